"""Frequency lists and code tables the synthetic HIS draws from (see `hisync.synthetic`).

Surname weights follow the rough shares of the most common Chinese surnames (王 and 李
about 7% each, 张 6%, ...); given names are one or two characters drawn from common
male/female name characters.
"""

from __future__ import annotations

SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1), ("黄", 2.2),
    ("赵", 2.0), ("吴", 1.9), ("周", 1.9), ("徐", 1.5), ("孙", 1.5), ("马", 1.3), ("朱", 1.3),
    ("胡", 1.2), ("郭", 1.2), ("何", 1.1), ("高", 1.1), ("林", 1.1), ("罗", 0.9), ("郑", 0.9),
    ("梁", 0.9), ("谢", 0.8), ("宋", 0.7), ("唐", 0.7), ("许", 0.6), ("韩", 0.6), ("冯", 0.6),
    ("邓", 0.6), ("曹", 0.6), ("彭", 0.5), ("曾", 0.5), ("肖", 0.5), ("田", 0.5), ("董", 0.5),
    ("袁", 0.4), ("潘", 0.4), ("于", 0.4), ("蒋", 0.4), ("蔡", 0.4), ("余", 0.4), ("杜", 0.4),
    ("叶", 0.4), ("程", 0.4), ("苏", 0.3), ("魏", 0.3), ("吕", 0.3), ("丁", 0.3), ("任", 0.3),
    ("沈", 0.3), ("姚", 0.3), ("卢", 0.3), ("姜", 0.3), ("崔", 0.3), ("钟", 0.3), ("谭", 0.3),
    ("陆", 0.3), ("汪", 0.3), ("范", 0.3), ("金", 0.3), ("石", 0.2), ("廖", 0.2), ("贾", 0.2),
    ("夏", 0.2), ("韦", 0.2), ("方", 0.2), ("白", 0.2), ("邹", 0.2), ("孟", 0.2), ("熊", 0.2),
    ("秦", 0.2), ("邱", 0.2), ("江", 0.2), ("尹", 0.2), ("薛", 0.2), ("段", 0.2), ("雷", 0.2),
    ("侯", 0.2), ("龙", 0.2), ("史", 0.2), ("欧阳", 0.05), ("司马", 0.02), ("诸葛", 0.01),
)
MALE_CHARS = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宁浩海峰俊林国建志文德永成红春"
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀英桂兰婷雪慧颖琳洁红梅萍玲倩丹燕凤洁琴云莉"
FOREIGN: tuple[tuple[str, str], ...] = (
    ("John Smith", "en"), ("Emily Johnson", "en"), ("Michael Brown", "en"),
    ("Sarah Davis", "en"), ("김민준", "ko"), ("이서연", "ko"), ("박지훈", "ko"), ("최수아", "ko"),
)
US_AREA_CODES = ("212", "415", "617", "650", "202", "312")

MOBILE_PREFIXES = tuple(
    [str(p) for p in range(130, 140)] + ["150", "151", "152", "153", "155", "156", "157",
                                         "158", "159", "166", "176", "177", "178"]
    + [str(p) for p in range(180, 190)] + ["198", "199"])
# Area codes with the length of their local numbers.
LANDLINE_AREAS: tuple[tuple[str, int], ...] = (
    ("10", 8), ("21", 8), ("20", 8), ("755", 8), ("571", 8), ("28", 8), ("27", 8), ("25", 8),
    ("591", 8), ("371", 8),
)

# HIS department code -> (our code, Chinese name, English name, ICD-10 pool, procedure pool)
DEPARTMENTS: dict[str, tuple[str, str, str, tuple[str, ...], tuple[str, ...]]] = {
    "0301": ("CARD", "心血管内科", "Cardiology",
             ("I10", "I20.0", "I21.0", "I21.9", "I25.1", "I48.0", "I50.0"), ("36.06", "37.22")),
    "0302": ("RESP", "呼吸内科", "Respiratory Medicine",
             ("J18.9", "J44.1", "J45.9", "J15.9", "J84.1"), ("33.24", "96.04")),
    "0401": ("GSURG", "普通外科", "General Surgery",
             ("K35.8", "K80.2", "K40.9", "K56.6", "K57.3"), ("47.01", "51.23", "53.00")),
    "0402": ("ORTH", "骨科", "Orthopaedics",
             ("S72.0", "M16.1", "M17.1", "S82.2", "M51.2"), ("81.51", "81.54", "79.35")),
    "0501": ("ONCO", "肿瘤科", "Oncology",
             ("C34.9", "C16.9", "C18.7", "C50.9", "C22.0"), ("99.25", "92.29")),
    "0601": ("ENDO", "内分泌科", "Endocrinology", ("E11.9", "E10.9", "E05.0", "E66.9"), ()),
    "0701": ("NEURO", "神经内科", "Neurology", ("I63.9", "G40.9", "G20", "I61.9"), ("99.10",)),
}
# Encounter type codes as Chinese HIS use them: 住院, 门诊, 手术, 检查.
ENCOUNTER_TYPES = {"ZY": "inpatient", "MZ": "outpatient", "SS": "surgery", "JC": "exam"}
# 离院方式 (discharge disposition) codes of the inpatient front sheet (病案首页).
DISPOSITIONS = {"1": "home", "2": "transfer", "3": "community", "4": "against_advice",
                "5": "died", "9": "other"}
