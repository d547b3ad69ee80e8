"""What the answer pages of the forms without JavaScript say, in each language.

registry/api/forms.py draws the pages; this holds their sentences, one `Words` a
language (as registry/web/api.js and subscriber.js hold the script's). The API's
own messages are English and for programmers: the Chinese pages say the common
refusals in their own words and quote the API's message for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


def sentence(text: str) -> str:
    """An API message as a sentence: capitalized, with a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


BEIJING = timezone(timedelta(hours=8))


def _beijing_date(when: datetime) -> str:
    local = when.astimezone(BEIJING) if when.tzinfo else when
    return f"{local.year}年{local.month}月{local.day}日"


@dataclass(frozen=True)
class Words:
    lang: str
    registry: str
    back: str
    failed: str
    unreadable: Callable[[str], str]
    reasons: dict[str, str]
    unreadable_number: str
    invalid_number: Callable[[str], str]
    too_many_codes: Callable[[str, bool], str]
    too_many_from_you: Callable[[str], str]
    # Refusals said in these words, by the API's error code; the rest quote the API.
    known: dict[str, str]
    unavailable: str  # a 5xx; empty: the API's own message
    other: Callable[[str], str]
    wait_little: str
    wait_seconds: Callable[[int], str]
    wait_minutes: Callable[[int], str]
    wait_hours: Callable[[int], str]
    date: Callable[[datetime], str]
    code_label: str
    # A wrong code, with the tries left (0: the request is void, a new code is needed).
    wrong_code: Callable[[int], str]
    confirm_registration: str
    confirm_removal: str
    refused_title: str
    refused: str
    code_sent: Callable[[str, int], str]
    enter_code: str
    not_found_title: str
    no_such_form: str
    removed: Callable[[str], str]
    may_call_again: str
    removed_title: str
    is_registered: Callable[[str], str]
    # What a registration blocks, as the page's script says it (registry/web/subscriber.js).
    channel_names: dict[str, str]
    joined: Callable[[list[str]], str]
    blocked: Callable[[str], str]
    still_accepted: Callable[[list[str]], str]
    all_blocked: str
    stop_now: Callable[[str], str]
    registered_title: str
    not_registered_title: str
    not_registered: Callable[[str], str]
    registered_since: Callable[[str, str], str]
    registered_short: str
    say_channel: str
    tick_channel: str
    say_zone: str
    thanks: str
    reference: Callable[[str], str]
    follow: tuple[str, str]  # around the link to the report's page
    follow_link: str
    not_registered_then: str
    within_grace: str
    recorded_title: str
    enter_reference: str
    no_such_report: str
    report_not_found_title: str
    report_received: Callable[[str, str], str]
    dealt_with_on: Callable[[str], str]
    # How an administrator closed a report (registry.complaints.OUTCOMES).
    outcomes: dict[str, str]
    dealt_with: str
    being_looked_at: str
    your_report_title: str


ENGLISH = Words(
    lang="en",
    registry="Do-not-call registry",
    back="Back to the registry page",
    failed="That did not work",
    unreadable=lambda message: message,
    reasons={
        "empty": "it is empty",
        "not_a_number": "it does not look like a phone number",
        "invalid_country_code": "the country code is not one we know",
        "too_short": "it has too few digits",
        "too_long": "it has too many digits",
        "invalid_length": "it has the wrong number of digits",
        "invalid_for_region": (
            "no phone number like it exists in the region it was read in (without a region "
            "given, the registry's own)"
        ),
    },
    unreadable_number="it is not a number we can read",
    invalid_number=lambda why: (
        f"That phone number is not valid: {why}. Enter it with its country code (such as "
        "+1 212 555 1234), or choose the region it belongs to."
    ),
    too_many_codes=lambda wait, leaving: (
        "Too many codes have been asked for this number (not necessarily by you). "
        f"Please {wait} and try again, or text {'START' if leaving else 'STOP'} from that "
        "phone to your carrier's opt-out number, which "
        f"{'takes it off the registry' if leaving else 'registers it'} with no code."
    ),
    too_many_from_you=lambda wait: (
        f"Too many requests from your connection. Please {wait} and try again."
    ),
    known={
        "invalid_region": "The region must be a two-letter country code, such as US, IN or CN.",
        "invalid_time": (
            "The time is not right: enter the date and time it happened, no later than now."
        ),
    },
    unavailable="",
    other=sentence,
    wait_little="wait a little",
    wait_seconds=lambda n: f"wait {n} second{'s' if n != 1 else ''}",
    wait_minutes=lambda n: f"wait {n} minutes",
    wait_hours=lambda n: f"wait about {n} hours",
    date=lambda when: when.strftime("%d %B %Y"),
    code_label="Six-digit code",
    wrong_code=lambda left: (
        "That is not the code sent; "
        + (f"{left} {'try' if left == 1 else 'tries'} left." if left else "")
        + ("" if left else "the request is now void; ask for a new code.")
    ),
    confirm_registration="Confirm registration",
    confirm_removal="Confirm removal",
    refused_title="Form refused",
    refused="This form was sent from another site; use the registry's own page.",
    code_sent=lambda number, minutes: (
        f"We sent a six-digit code to {number}. It works for {minutes} minutes."
    ),
    enter_code="Enter the code we sent",
    not_found_title="Page not found",
    no_such_form="There is no such form.",
    removed=lambda number: f"{number} is not on the register now.",
    may_call_again="Telemarketers may call it again once their lists are updated.",
    removed_title="Number removed",
    is_registered=lambda number: f"{number} is registered.",
    channel_names={"voice": "calls", "sms": "text messages"},
    joined=" and ".join,
    blocked=lambda what: f"Blocked: {what}.",
    still_accepted=lambda names: f"Offers you still accept: {'; '.join(names)}.",
    all_blocked="Every kind of telemarketing is blocked.",
    stop_now=lambda date: (
        f"Telemarketers who check the registry keep to it now; from {date} every telemarketer must."
    ),
    registered_title="Number registered",
    not_registered_title="Not registered",
    not_registered=lambda number: f"{number} is not registered.",
    registered_since=lambda since, effective: (
        f"Registered on {since}; every telemarketer must keep to it from {effective}."
    ),
    registered_short="Registered",
    say_channel="Say whether it was a call or a text message.",
    tick_channel="Tick calls, text messages or both: what should stop?",
    say_zone="Say which time zone the time is in.",
    thanks="Thank you: your report was recorded.",
    reference=lambda reference: f"Its reference is {reference}.",
    follow=("Keep it to ", ": what was done about it, once it is dealt with."),
    follow_link="follow the report",
    not_registered_then=(
        "When this happened your registration did not cover it (the number was not "
        "registered then, or not for this kind of contact), so the caller broke no rule."
    ),
    within_grace=(
        "This happened within the grace period after your registration, when telemarketers "
        "may not yet have updated their lists. We keep the report all the same."
    ),
    recorded_title="Report recorded",
    enter_reference="Enter the reference the report's page gave (it starts with cmp_).",
    no_such_report=(
        "We have no report with that reference. Check it against the page that gave it; "
        "reports are kept for a limited time only."
    ),
    report_not_found_title="Report not found",
    report_received=lambda reference, date: f"Report {reference}, received on {date}.",
    dealt_with_on=lambda date: f"Dealt with on {date}.",
    outcomes={
        "sender_warned": "The caller was warned.",
        "sender_suspended": "The caller's service was suspended.",
        "no_breach_found": (
            "We found no breach of the rules: for instance, the number was not registered "
            "yet when it happened, or the caller had your consent."
        ),
        "referred_to_regulator": "The report was passed on to the regulator.",
        "insufficient_detail": "The report did not give enough detail for us to act on.",
    },
    dealt_with="It was dealt with.",
    being_looked_at="It is being looked at. Come back to this page to see the outcome.",
    your_report_title="Your report",
)

CHINESE = Words(
    lang="zh",
    registry="拒收名单",
    back="返回登记页面",
    failed="未能完成",
    unreadable=lambda message: f"无法读取此表单（{message}）。请使用登记处自己的页面。",
    reasons={
        "empty": "号码为空",
        "not_a_number": "看起来不像电话号码",
        "invalid_country_code": "国家代码无法识别",
        "too_short": "位数太少",
        "too_long": "位数太多",
        "invalid_length": "位数不对",
        "invalid_for_region": "所选地区（未选时为本登记处默认地区）没有这样的号码",
    },
    unreadable_number="无法识别该号码",
    invalid_number=lambda why: (
        f"号码无效：{why}。请带国家代码填写（例如 +86 138 0013 8000），或选择号码所属地区。"
    ),
    too_many_codes=lambda wait, leaving: (
        f"该号码申请验证码的次数过多（不一定是您本人申请的）。请{wait}再试；也可以用该手机"
        "向运营商公布的拒收名单短信号码发送"
        + ("“START”，无需验证码即可取消登记。" if leaving else "“退订”或“TD”，无需验证码即可登记。")
    ),
    too_many_from_you=lambda wait: f"来自您网络的请求过多。请{wait}再试。",
    known={
        "invalid_region": "地区须为两个字母的代码，例如 CN、US 或 IN。",
        "empty_number": "请填写手机号码。",
        "wrong_code": "验证码不正确。请核对我们发送的短信，重新输入六位数字。",
        "invalid_code": "验证码是我们发送的短信中的六位数字。",
        "request_not_found": "该申请已失效。请重新开始，获取新的验证码。",
        "request_expired": "验证码已过期。请重新开始，获取新的验证码。",
        "request_void": "错误次数过多，该申请已作废。请重新开始，获取新的验证码。",
        "request_used": "该验证码已使用，申请已完成：可查询号码状态确认。",
        "request_busy": (
            "该验证码正在确认中（是否在另一个页面提交过？）。请稍候再提交一次，查看结果。"
        ),
        "notifier_unavailable": "暂时无法向您的手机发送验证码。请稍后再试。",
        "not_registered": "该号码未登记，无需取消。",
        "not_replicated": (
            "登记处未能及时确认这项更改已经保存。请稍后查询号码状态，再决定是否重试。"
        ),
        "invalid_time": "时间不正确：请填写发生的日期和时间，且不能晚于现在。",
        "text_too_long": "“对方说了什么”过长，请缩短后再提交。",
        "invalid_preferences": "请勾选电话、短信或两者：要拒绝哪一种？",
        "invalid_caller": (
            "无法识别来电或发信方。请填写对方的电话号码、短信端口号（3 至 8 位数字）"
            "或短信中显示的签名。"
        ),
    },
    unavailable="登记处暂时无法使用，请稍后再试。",
    other=lambda message: f"请求未被接受（{message}）",
    wait_little="稍等片刻",
    wait_seconds=lambda n: f" {n} 秒后",
    wait_minutes=lambda n: f" {n} 分钟后",
    wait_hours=lambda n: f"在约 {n} 小时后",
    # Mainland China's one zone, no daylight saving: the date its subscribers live in.
    date=lambda when: _beijing_date(when),
    code_label="六位验证码",
    wrong_code=lambda left: (
        f"验证码不正确。请核对我们发送的短信，重新输入六位数字。剩余次数：{left}。"
        if left
        else "验证码不正确，且已无剩余次数，该申请已作废。请重新开始，获取新的验证码。"
    ),
    confirm_registration="确认登记",
    confirm_removal="确认取消",
    refused_title="表单被拒绝",
    refused="此表单来自其他网站；请使用登记处自己的页面。",
    code_sent=lambda number, minutes: f"我们已向 {number} 发送六位验证码，{minutes} 分钟内有效。",
    enter_code="请输入验证码",
    not_found_title="页面不存在",
    no_such_form="没有这个表单。",
    removed=lambda number: f"{number} 已不在登记名单中。",
    may_call_again="营销方更新名单后，可能会再次联系该号码。",
    removed_title="已取消登记",
    is_registered=lambda number: f"{number} 已登记。",
    channel_names={"voice": "电话", "sms": "短信"},
    joined="和".join,
    blocked=lambda what: f"已拒绝：{what}。",
    still_accepted=lambda names: f"仍接收的营销类别：{'；'.join(names)}。",
    all_blocked="已拒绝所有类别的营销。",
    stop_now=lambda date: (
        f"核对登记名单的营销方现在就会遵守您的选择；自 {date} 起，所有营销方都必须遵守。"
    ),
    registered_title="登记成功",
    not_registered_title="未登记",
    not_registered=lambda number: f"{number} 未登记。",
    registered_since=lambda since, effective: (
        f"登记于 {since}；自 {effective} 起，所有营销方都须遵守您的登记选择。"
    ),
    registered_short="已登记",
    say_channel="请选择收到的是电话还是短信。",
    tick_channel="请勾选电话、短信或两者：要拒绝哪一种？",
    say_zone="请选择时间所在的时区。",
    thanks="谢谢：您的举报已记录。",
    reference=lambda reference: f"举报编号为 {reference}。",
    follow=("请保存编号，处理完毕后可", "，了解处理结果。"),
    follow_link="查询举报进展",
    not_registered_then=(
        "发生时您的登记并不涵盖此事（当时号码尚未登记，或登记未拒绝这类联系方式），"
        "因此按本登记处的规则，对方不构成违规。"
    ),
    within_grace="此事发生在您登记后的宽限期内，营销方可能尚未更新名单。我们仍会保留这份举报。",
    recorded_title="举报已记录",
    enter_reference="请填写举报页面给出的编号（以 cmp_ 开头）。",
    no_such_report="没有该编号的举报。请与给出编号的页面核对；举报只保存一段时间。",
    report_not_found_title="未找到举报",
    report_received=lambda reference, date: f"举报 {reference}，受理于 {date}。",
    dealt_with_on=lambda date: f"已于 {date} 处理完毕。",
    outcomes={
        "sender_warned": "已对来电方提出警告。",
        "sender_suspended": "来电方的服务已被暂停。",
        "no_breach_found": (
            "按本登记处的规则未发现违规：例如，发生时号码尚未登记，或对方已获得您的同意。"
        ),
        "referred_to_regulator": "举报已移交监管部门。",
        "insufficient_detail": "举报提供的信息不足，无法处理。",
    },
    dealt_with="已处理完毕。",
    being_looked_at="正在处理中。请稍后回到本页面查看结果。",
    your_report_title="您的举报",
)

BY_LANGUAGE = {"en": ENGLISH, "zh": CHINESE}
