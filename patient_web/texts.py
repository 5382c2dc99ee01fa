"""The questionnaire pages' own words, per patient language (the questions come from the
script). Chinese is the default: a link we cannot tie to a patient is answered in it."""

from __future__ import annotations

DEFAULT_LANGUAGE = "zh-CN"

TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "随访问卷",
        "identity.heading": "请先确认您的身份",
        "identity.prompt": "请输入您出生年份的四位数字，例如 1965。",
        "identity.field": "出生年份",
        "identity.submit": "确认",
        "identity.wrong": "年份不正确，您还可以再试 {left} 次。",
        "identity.bad_year": "请输入四位数字的年份。",
        "next": "下一题",
        "yes": "是",
        "no": "否",
        "range": "请输入 {min} 到 {max} 之间的整数",
        "out_of_range": "请输入 {min} 到 {max} 之间的整数。",
        "pick_one": "请选择一个答案。",
        "write_something": "请写下您的回答。",
        "too_long": "回答太长，请控制在 {max} 字以内。",
        "text_hint": "请在这里写下您的回答",
        "safety": "重要提示",
        "done.heading": "问卷已完成",
        "done.body": "我们已经收到您的回答，您可以关闭此页面。",
        "refused.unknown.heading": "链接无效",
        "refused.unknown.body": "这个链接无法打开，请检查短信中的链接是否完整。",
        "refused.used.heading": "问卷已经填写过了",
        "refused.used.body": "这个链接只能使用一次，您的回答已经收到，谢谢。",
        "refused.expired.heading": "链接已过期",
        "refused.expired.body": "这个链接已经过期。如有需要，医院会再与您联系。",
        "refused.locked.heading": "链接已锁定",
        "refused.locked.body": "出生年份多次输入不正确，为保护您的信息，这个链接已锁定。"
                               "医院工作人员会与您联系。",
        "refused.closed.heading": "这次随访已经结束",
        "refused.closed.body": "这次随访不需要再填写问卷了，谢谢。",
        "optout.link": "不再接收短信",
        "optout.heading": "不再接收随访短信？",
        "optout.body": "确认后，医院将不再给您发送随访短信。",
        "optout.confirm": "确认，不再接收",
        "optout.back": "返回",
        "optout.done.heading": "已为您退订",
        "optout.done.body": "医院将不再给您发送随访短信。",
        "too_many.heading": "请求太频繁",
        "too_many.body": "请稍等一分钟后再试。",
        "bad_form.heading": "页面已过期",
        "bad_form.body": "请重新打开短信中的链接。",
    },
    "en-US": {
        "title": "Follow-up questionnaire",
        "identity.heading": "First, please confirm who you are",
        "identity.prompt": "Enter the four digits of your year of birth, e.g. 1965.",
        "identity.field": "Year of birth",
        "identity.submit": "Confirm",
        "identity.wrong": "That year is not right. You may try {left} more time(s).",
        "identity.bad_year": "Please enter a four-digit year.",
        "next": "Next",
        "yes": "Yes",
        "no": "No",
        "range": "A whole number from {min} to {max}",
        "out_of_range": "Please enter a whole number from {min} to {max}.",
        "pick_one": "Please choose an answer.",
        "write_something": "Please write your answer.",
        "too_long": "That is too long: at most {max} characters, please.",
        "text_hint": "Write your answer here",
        "safety": "Important",
        "done.heading": "Thank you, you have finished",
        "done.body": "We have your answers. You may close this page.",
        "refused.unknown.heading": "This link does not work",
        "refused.unknown.body": "Please check that the whole link from the message was "
                                "opened.",
        "refused.used.heading": "Already answered",
        "refused.used.body": "This link works once; we have your answers. Thank you.",
        "refused.expired.heading": "This link has expired",
        "refused.expired.body": "This link is too old. The hospital will contact you if "
                                "needed.",
        "refused.locked.heading": "This link is locked",
        "refused.locked.body": "The year of birth was wrong too many times, so the link "
                               "is locked to protect your information. The hospital will "
                               "contact you.",
        "refused.closed.heading": "This follow-up is over",
        "refused.closed.body": "There is nothing more to answer. Thank you.",
        "optout.link": "Stop these messages",
        "optout.heading": "Stop follow-up messages?",
        "optout.body": "Once you confirm, the hospital will send you no more follow-up "
                       "text messages.",
        "optout.confirm": "Yes, stop them",
        "optout.back": "Back",
        "optout.done.heading": "You will get no more messages",
        "optout.done.body": "The hospital will send you no more follow-up text messages.",
        "too_many.heading": "Too many requests",
        "too_many.body": "Please wait a minute and try again.",
        "bad_form.heading": "This page is out of date",
        "bad_form.body": "Please open the link from the message again.",
    },
}


def ui_language(patient_language: str | None) -> str:
    """The pages' language for a patient: theirs when we have the words, else Chinese."""
    return patient_language if patient_language in TEXTS else DEFAULT_LANGUAGE


def text(language: str, key: str, **values: object) -> str:
    words = TEXTS.get(language, TEXTS[DEFAULT_LANGUAGE])
    template = words.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return template.format(**values) if values else template
