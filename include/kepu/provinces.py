"""Province-level divisions of China, with the short names units actually write."""

from __future__ import annotations

# (full name, short names). The 34 province-level divisions plus 新疆生产建设兵团, which the notice
# addresses as a sender in its own right.
PROVINCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("北京市", ("北京",)),
    ("天津市", ("天津",)),
    ("上海市", ("上海",)),
    ("重庆市", ("重庆",)),
    ("河北省", ("河北",)),
    ("山西省", ("山西",)),
    ("辽宁省", ("辽宁",)),
    ("吉林省", ("吉林",)),
    ("黑龙江省", ("黑龙江",)),
    ("江苏省", ("江苏",)),
    ("浙江省", ("浙江",)),
    ("安徽省", ("安徽",)),
    ("福建省", ("福建",)),
    ("江西省", ("江西",)),
    ("山东省", ("山东",)),
    ("河南省", ("河南",)),
    ("湖北省", ("湖北",)),
    ("湖南省", ("湖南",)),
    ("广东省", ("广东",)),
    ("海南省", ("海南",)),
    ("四川省", ("四川",)),
    ("贵州省", ("贵州",)),
    ("云南省", ("云南",)),
    ("陕西省", ("陕西",)),
    ("甘肃省", ("甘肃",)),
    ("青海省", ("青海",)),
    ("台湾省", ("台湾",)),
    ("内蒙古自治区", ("内蒙古",)),
    ("广西壮族自治区", ("广西", "广西自治区")),
    ("西藏自治区", ("西藏",)),
    ("宁夏回族自治区", ("宁夏", "宁夏自治区")),
    ("新疆维吾尔自治区", ("新疆", "新疆自治区")),
    ("香港特别行政区", ("香港",)),
    ("澳门特别行政区", ("澳门",)),
    ("新疆生产建设兵团", ("兵团", "新疆兵团")),
)


def _aliases() -> list[tuple[str, str]]:
    pairs = []
    for full, shorts in PROVINCES:
        pairs.append((full, full))
        pairs.extend((s, full) for s in shorts)
    # Longest first so 新疆生产建设兵团 wins over 新疆 and 黑龙江省 over 黑龙江.
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


PROVINCE_ALIASES: tuple[tuple[str, str], ...] = tuple(_aliases())


def match_province(text: str) -> tuple[str, str] | None:
    """If ``text`` starts with a province name, return (full name, the rest of the text)."""
    for alias, full in PROVINCE_ALIASES:
        if text.startswith(alias):
            return full, text[len(alias) :]
    return None
