"""Standard IVR messages per locale; a script may override any of them under `messages:`.

All are Jinja2 templates over the open context only (`hospital`, `emergency_number`,
`callback_number`): any of them may play before identity is verified, to whoever or
whatever answered. `opening` is the first thing a call says; `consent_prompt` and
`consent_declined` are the consent question of a script that does not write its own;
`voicemail` is the one message an answering machine may be left (the hospital and the
number to call back, nothing else).
"""

from __future__ import annotations

from core.enums import Sex

MESSAGE_KEYS = (
    "opening", "consent_prompt", "consent_declined", "invalid", "timeout", "use_keypad",
    "operator", "operator_unavailable",
    "optout_confirm", "optout_done", "optout_cancelled", "nurse_transfer", "safety",
    "identity_prompt", "identity_retry", "identity_failed", "voicemail",
)

DEFAULT_MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "opening": "您好，这里是{{ hospital }}。",
        "consent_prompt": "现在方便回答几个问题吗？方便请按1，不方便请按2。",
        "consent_declined": "好的，打扰您了。再见。",
        "invalid": "对不起，您的输入无效。",
        "timeout": "对不起，我们没有收到您的回答。",
        "use_keypad": "对不起，我没有听清楚，请用电话按键回答。",
        "operator": "正在为您转接工作人员，请稍候。",
        "operator_unavailable": "现在没有空闲的工作人员，我们会尽快给您回电。",
        "optout_confirm": "如果您以后不想再接到随访电话，请按1确认；继续回答请按其他键。",
        "optout_done": "好的，我们以后不会再给您打随访电话。祝您健康，再见。",
        "optout_cancelled": "好的，我们继续。",
        "nurse_transfer": "根据您的回答，我们现在为您转接值班护士，请不要挂机。",
        "safety": "我们的护士会尽快与您联系。如果症状加重，请立即拨打{{ emergency_number }}。",
        "identity_prompt": "为了确认您的身份，请输入您出生年份的四位数字。",
        "identity_retry": "输入的年份不正确，请再输入一次。",
        "identity_failed": "很抱歉，我们无法确认您的身份，工作人员会另行与您联系。再见。",
        "voicemail": "您好，这里是{{ hospital }}。请您方便时回电{{ callback_number }}。"
                     "谢谢，再见。",
    },
    "en-US": {
        "opening": "Hello, this is {{ hospital }}.",
        "consent_prompt": "Do you have a few minutes to answer some questions? Press 1 for "
                          "yes, 2 for no.",
        "consent_declined": "All right, sorry to disturb you. Goodbye.",
        "invalid": "Sorry, that is not a valid answer.",
        "timeout": "Sorry, we did not get your answer.",
        "use_keypad": "Sorry, I did not catch that. Please answer with your phone keypad.",
        "operator": "Connecting you to a member of staff, please hold.",
        "operator_unavailable": "Nobody is free right now; we will call you back soon.",
        "optout_confirm": "To stop receiving follow-up calls, press 1. To carry on, press "
                          "any other key.",
        "optout_done": "All right, we will not call you again for follow-up. Goodbye.",
        "optout_cancelled": "All right, let us carry on.",
        "nurse_transfer": "From your answer, we are putting you through to the nurse on "
                          "duty. Please stay on the line.",
        "safety": "A nurse will contact you soon. If your symptoms get worse, call "
                  "{{ emergency_number }} now.",
        "identity_prompt": "To confirm who you are, please enter the four digits of your "
                           "year of birth.",
        "identity_retry": "That year is not right. Please try once more.",
        "identity_failed": "Sorry, we could not confirm your identity. A member of staff "
                           "will contact you. Goodbye.",
        "voicemail": "Hello, this is {{ hospital }}. Please call us back at "
                     "{{ callback_number }}. Thank you, goodbye.",
    },
    "ko-KR": {
        "opening": "안녕하세요, {{ hospital }}입니다.",
        "consent_prompt": "지금 몇 가지 질문에 답해 주실 수 있으세요? 예는 1번, 아니요는 "
                          "2번을 눌러 주세요.",
        "consent_declined": "알겠습니다. 실례했습니다. 안녕히 계세요.",
        "invalid": "죄송합니다. 올바른 응답이 아닙니다.",
        "timeout": "죄송합니다. 응답을 받지 못했습니다.",
        "use_keypad": "죄송합니다. 잘 듣지 못했습니다. 전화기 버튼으로 응답해 주세요.",
        "operator": "상담원에게 연결해 드리겠습니다. 잠시만 기다려 주세요.",
        "operator_unavailable": "지금은 연결 가능한 상담원이 없습니다. 곧 다시 전화드리겠습니다.",
        "optout_confirm": "앞으로 추적 관찰 전화를 받지 않으시려면 1번을, 계속하시려면 다른 "
                          "버튼을 눌러 주세요.",
        "optout_done": "알겠습니다. 앞으로 전화드리지 않겠습니다. 안녕히 계세요.",
        "optout_cancelled": "알겠습니다. 계속하겠습니다.",
        "nurse_transfer": "응답하신 내용에 따라 당직 간호사에게 연결해 드리겠습니다. "
                          "끊지 말고 기다려 주세요.",
        "safety": "간호사가 곧 연락드리겠습니다. 증상이 심해지면 즉시 "
                  "{{ emergency_number }}번으로 전화하세요.",
        "identity_prompt": "본인 확인을 위해 태어나신 해의 네 자리 숫자를 눌러 주세요.",
        "identity_retry": "입력하신 연도가 맞지 않습니다. 다시 한 번 눌러 주세요.",
        "identity_failed": "죄송합니다. 본인 확인을 하지 못했습니다. 담당자가 따로 "
                           "연락드리겠습니다. 안녕히 계세요.",
        "voicemail": "안녕하세요, {{ hospital }}입니다. 편하실 때 {{ callback_number }}번으로 "
                     "전화 부탁드립니다. 감사합니다.",
    },
}

# Words a caller may say for yes and for no, per locale: several words may map to one
# answer (Korean 네 / 예 and 아니요 / 아니오). Only locales with a speech model need them.
YES_NO_WORDS: dict[str, dict[bool, tuple[str, ...]]] = {
    "ko-KR": {True: ("예", "네"), False: ("아니요", "아니오")},
    "en-US": {True: ("yes",), False: ("no",)},
    "zh-CN": {True: ("是", "对"), False: ("不是", "没有")},
}

# How a patient is addressed in the greeting (`patient.title`), per locale and sex. Korean
# uses 님 for everyone; a sex the HIS does not know gets no title elsewhere.
PATIENT_TITLES: dict[str, dict[Sex, str]] = {
    "zh-CN": {Sex.MALE: "先生", Sex.FEMALE: "女士"},
    "en-US": {Sex.MALE: "Mr.", Sex.FEMALE: "Ms."},
    "ko-KR": {Sex.MALE: "님", Sex.FEMALE: "님", Sex.UNKNOWN: "님"},
}


def patient_title(locale: str, sex: Sex) -> str:
    """The title for a patient of `sex` in `locale` ("" when the locale has none)."""
    return PATIENT_TITLES.get(locale, {}).get(sex, "")
