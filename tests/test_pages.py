"""The subscriber page (`/`) and the operator portal (`/portal`), driven in headless Chromium.

A real `dnc serve` on a free port and a real Redis; Debian's `chromium` and
`chromium-driver` driven through Selenium. `make test` installs the two
packages when they are missing; when they still are, these tests fail (they
do not skip): a page nobody tried in a browser is a gap, not a pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ADMIN_KEY
from fastapi.testclient import TestClient

from registry import rules
from registry.embedded import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver (`make test` does it when they are missing)"
_installed = Path(sys.executable).with_name("dnc")
DNC = [str(_installed)] if _installed.exists() else [sys.executable, "-m", "registry.cli"]
WAIT = 10.0


class Server:
    """One `dnc serve` on the test's Redis, its one-time codes written to an outbox file."""

    def __init__(self, redis_url: str, directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.outbox = directory / "outbox.jsonl"
        self.log = directory / "serve.log"
        env = {name: value for name, value in os.environ.items() if not name.startswith("DNC_")}
        env.update(
            PYTHONUNBUFFERED="1",
            DNC_REDIS_URL=redis_url,
            DNC_ADMIN_KEY=ADMIN_KEY,
            DNC_HOST="127.0.0.1",
            DNC_PORT=str(self.port),
            DNC_NOTIFIER=f"file:{self.outbox}",
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*DNC, "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"dnc serve exited:\n{self.log.read_text(errors='replace')}")
            try:
                if self.http.get("/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dnc serve not ready:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def key(self, role: str) -> str:
        answer = self.http.post(
            "/v1/operators",
            json={"name": f"pages {role}", "role": role},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["api_key"])

    def register(self, *numbers: str) -> None:
        """Registrations a carrier attests, for tests that are not about the subscriber's form."""
        carrier = {"Authorization": f"Bearer {self.key('carrier')}"}
        for number in numbers:
            answer = self.http.put(f"/v1/registrations/{number}", headers=carrier)
            assert answer.status_code == 201, answer.text

    def code_for(self, number: str, after: int = 0) -> str:
        """The newest code sent to `number`, from the outbox line `after` on."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            lines = self.outbox.read_text().splitlines() if self.outbox.exists() else []
            sent = [json.loads(line) for line in lines[after:]]
            codes = [message["code"] for message in sent if message["to"] == number]
            if codes:
                return str(codes[-1])
            time.sleep(0.05)
        raise AssertionError(f"no code for {number} in {self.outbox}")

    def outbox_lines(self) -> int:
        return len(self.outbox.read_text().splitlines()) if self.outbox.exists() else 0


@pytest.fixture
def server(redis_url: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(redis_url, tmp_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


def _browser(downloads: Path, scripts: bool = True) -> Any:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    if missing and not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail(f"browser tests need {' and '.join(missing)}: {INSTALL}", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("browser tests need selenium: pip install -e '.[dev]'", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(flag)
    if not scripts:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A driver path of our own: Selenium Manager (which downloads drivers) is never asked.
    service = Service(executable_path=shutil.which("chromedriver") or CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return driver


@pytest.fixture(scope="module")
def chromium(downloads: Path) -> Iterator[Any]:
    """One headless Chromium for the module; each test opens its own server's origin."""
    driver = _browser(downloads)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def chromium_without_scripts(downloads: Path) -> Iterator[Any]:
    """Headless Chromium with JavaScript turned off, as some subscribers browse."""
    driver = _browser(downloads, scripts=False)
    yield driver
    driver.quit()


class Page:
    """The browser on one page of the server, in the words of the tests."""

    def __init__(self, driver: Any, server: Server, path: str) -> None:
        self.driver = driver
        self.server = server
        driver.get(server.url + path)
        self.wait(lambda: driver.execute_script("return document.readyState") == "complete")

    def wait(self, condition: Callable[[], Any], what: str = "the page") -> Any:
        deadline = time.monotonic() + WAIT
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; console: {self.console()}")
            time.sleep(0.05)

    def element(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def fill(self, element_id: str, text: str) -> None:
        field = self.element(element_id)
        field.clear()
        field.send_keys(text)

    def choose(self, element_id: str, value: str) -> None:
        from selenium.webdriver.support.select import Select

        Select(self.element(element_id)).select_by_value(value)

    def tick(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        box = self.driver.find_element(By.CSS_SELECTOR, css)
        if not box.is_selected():
            box.click()

    def submit(self, form_id: str) -> None:
        from selenium.webdriver.common.by import By

        self.element(form_id).find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()

    def leave(self, click: Callable[[], None]) -> None:
        """`click()` loads another page: wait until this one is gone and that one loaded."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.common.by import By

        old = self.driver.find_element(By.TAG_NAME, "html")

        def gone() -> bool:
            try:
                old.is_enabled()
            except StaleElementReferenceException:
                return True
            except WebDriverException as exc:
                # Asked in the instant the page is swapped, Chromium says so in these words.
                if "does not belong to the document" in str(exc):
                    return True
                raise
            return False

        click()
        self.wait(gone, "the next page")
        self.wait(lambda: self.driver.execute_script("return document.readyState") == "complete")

    def shown(self, element_id: str) -> str:
        """The text of `element_id` once it is shown and the request behind it is over."""

        def ready() -> str | None:
            box = self.element(element_id)
            form_busy = self.driver.execute_script(
                "return document.querySelectorAll('[aria-busy=\"true\"]').length"
            )
            return box.text if box.is_displayed() and box.text and not form_busy else None

        return str(self.wait(ready, f"#{element_id} to be shown"))

    def hidden(self, element_id: str) -> bool:
        return not self.element(element_id).is_displayed()

    def storage(self, kind: str) -> dict[str, str]:
        return dict(
            self.driver.execute_script(
                f"const s = window.{kind}; const o = {{}};"
                "for (let i = 0; i < s.length; i++) { o[s.key(i)] = s.getItem(s.key(i)); }"
                "return o;"
            )
        )

    def console(self) -> list[str]:
        """Script errors and CSP refusals the page caused (failed API calls are expected)."""
        entries = self.driver.get_log("browser")
        return [
            e["message"]
            for e in entries
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
        ]


def open_portal(driver: Any, server: Server, key: str) -> Page:
    page = Page(driver, server, "/portal")
    page.fill("key-input", key)
    page.submit("key-form")
    assert key[-4:] in page.shown("key-state")
    return page


def test_a_subscriber_registers_and_the_portal_sees_the_number_blocked(
    chromium: Any, server: Server
) -> None:
    page = Page(chromium, server, "/")
    page.fill("register-number", "+1 212 555 1234")
    page.tick('#register-categories input[value="2"]')
    page.submit("register-form")
    assert "code to +1 212 555 1234" in page.shown("register-sent")
    # A reload (a phone's tab, while the text is read) keeps the code step.
    chromium.refresh()
    page.wait(lambda: chromium.execute_script("return document.readyState") == "complete")
    assert "code to +1 212 555 1234" in page.shown("register-sent")
    assert "dnc.pending.register" in page.storage("sessionStorage")
    page.fill("register-code", server.code_for("+12125551234"))
    page.submit("register-confirm")

    result = page.shown("register-result")
    assert "+12125551234 is registered." in result
    assert "calls and text messages" in result
    assert "Telemarketers who still call or write after" in result
    assert f"2. {rules.CATEGORIES[2]}" in result
    assert page.hidden("register-confirm")
    # The number went in request bodies only: not in the page's address, and not in storage
    # once the code step is over.
    assert chromium.current_url == server.url + "/"
    assert page.storage("localStorage") == {} and page.storage("sessionStorage") == {}
    assert page.console() == []

    key = server.key("operator")
    portal = open_portal(chromium, server, key)
    assert list(portal.storage("sessionStorage").values()) == [key]
    assert portal.storage("localStorage") == {}
    portal.fill("lookup-number", "+12125551234")
    portal.choose("lookup-channel", "voice")
    portal.choose("lookup-category", "1")
    portal.submit("lookup-form")
    assert portal.shown("lookup-result").startswith("Blocked: +12125551234")
    assert portal.element("lookup-result").get_attribute("data-status") == "blocked"

    # The category the subscriber ticked is still accepted: the preferences went through.
    portal.choose("lookup-category", "2")
    portal.submit("lookup-form")
    portal.wait(lambda: portal.element("lookup-result").get_attribute("data-status") == "callable")
    assert "accepts offers of this category" in portal.shown("lookup-result")
    assert chromium.current_url == server.url + "/portal"
    assert portal.console() == []


def test_the_status_check_says_whether_a_number_is_registered(
    chromium: Any, server: Server
) -> None:
    server.register("+12125551234")
    page = Page(chromium, server, "/")
    page.fill("status-number", "(212) 555-1234")
    page.fill("status-region", "us")
    page.submit("status-form")
    result = page.shown("status-result")
    assert result.startswith("+12125551234 is registered.")
    assert "Registered on" in result
    stamps = page.element("status-result").find_elements("tag name", "time")
    assert stamps and stamps[0].get_attribute("datetime").startswith("20")

    page.fill("status-number", "+12125559876")
    page.fill("status-region", "")
    page.submit("status-form")
    page.wait(lambda: "+12125559876 is not registered." in page.shown("status-result"))
    assert page.console() == []


def test_an_invalid_number_and_a_wrong_code_are_explained(chromium: Any, server: Server) -> None:
    page = Page(chromium, server, "/")
    page.fill("register-number", "12345")
    page.submit("register-form")
    error = page.shown("register-error")
    assert "That phone number is not valid" in error
    assert "invalid_number" in error  # the code, for a support call
    assert page.hidden("register-confirm")

    page.fill("status-number", "+1 212")
    page.submit("status-form")
    assert "That phone number is not valid" in page.shown("status-error")

    page.fill("register-number", "+12125551234")
    page.submit("register-form")
    page.shown("register-sent")
    right = server.code_for("+12125551234")
    page.fill("register-code", "000000" if right != "000000" else "111111")
    page.submit("register-confirm")
    assert "That code is not right" in page.shown("register-confirm-error")
    assert server.http.get("/v1/registrations/+12125551234").json()["registered"] is False
    assert page.console() == []


def test_a_subscriber_deregisters_through_the_page(chromium: Any, server: Server) -> None:
    server.register("+12125551234")
    page = Page(chromium, server, "/")
    page.fill("deregister-number", "+12125551234")
    page.submit("deregister-form")
    page.shown("deregister-sent")
    # Typed from a Chinese input method: full-width digits, and a space as the text shows it.
    code = server.code_for("+12125551234")
    wide = "".join(chr(ord(d) + 0xFEE0) for d in code)
    page.fill("deregister-code", f"{wide[:3]} {wide[3:]}")
    page.submit("deregister-confirm")
    assert "+12125551234 is not on the register now" in page.shown("deregister-result")
    assert server.http.get("/v1/registrations/+12125551234").json()["registered"] is False
    assert page.console() == []


def test_a_subscriber_reports_a_call(chromium: Any, server: Server) -> None:
    server.register("+12125551234")
    page = Page(chromium, server, "/")
    page.fill("complain-number", "+12125551234")
    page.fill("complain-caller", "+1 646 555 0199")
    when = page.element("complain-when")
    # datetime-local takes its value through script; typing it depends on the locale.
    chromium.execute_script("arguments[0].value = arguments[1]", when, "2026-01-02T10:30")
    page.tick('input[name="channel"][value="sms"]')
    page.choose("complain-category", "2")
    page.fill("complain-text", "Flats for sale")
    page.submit("complain-form")
    result = page.shown("complain-result")
    assert "your report was recorded" in result
    assert "Its reference is " in result
    # The link to follow it, and the page it leads to.
    from selenium.webdriver.common.by import By

    link = page.element("complain-result").find_element(By.LINK_TEXT, "follow the report")
    reference = result.split("Its reference is ", 1)[1].split(".", 1)[0]
    assert link.get_attribute("href").endswith(f"/complaints/{reference}?lang=en")
    page.leave(link.click)
    assert f"Report {reference}, received on" in chromium.page_source
    assert "It is being looked at." in chromium.page_source

    report = server.http.get(
        "/v1/reports/callers", params={"top": 5}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert report.status_code == 200, report.text
    assert "+16465550199" in report.text
    assert page.console() == []


# The English words the Chinese page shows on purpose: the switch back,
# "API" and the complaint reference's prefix.
_ENGLISH_ON_PURPOSE = {"English", "API", "cmp"}


def test_the_chinese_page_registers_checks_and_reports_in_chinese(
    chromium: Any, server: Server
) -> None:
    page = Page(chromium, server, "/")
    page.leave(page.element("language").click)  # the English page's switch
    assert chromium.execute_script("return document.documentElement.lang") == "zh-Hans"
    body = page.element("main").text
    assert "登记您的号码" in body
    assert set(re.findall(r"[A-Za-z]{3,}", body)) <= _ENGLISH_ON_PURPOSE

    page.submit("register-form")  # no number: the page's own check, in its own words
    assert page.shown("register-error") == "请填写手机号码。"
    page.fill("register-number", "12345")
    page.submit("register-form")
    error = page.shown("register-error")
    assert error.startswith("号码无效") and "错误 400，invalid_number" in error

    page.fill("register-number", "+86 138 0013 8000")
    page.tick('#register-categories input[value="3"]')
    page.submit("register-form")
    assert "我们已向 +86 138 0013 8000 发送六位验证码" in page.shown("register-sent")
    page.fill("register-code", server.code_for("+8613800138000"))
    page.submit("register-confirm")
    result = page.shown("register-result")
    assert "+8613800138000 已登记。" in result
    assert "已拒绝：电话和短信。" in result and "3. 教育" in result
    assert "之后仍来电或发短信的营销方" in result
    assert set(re.findall(r"[A-Za-z]{3,}", result)) == set()

    page.fill("status-number", "+8613800138000")
    page.submit("status-form")
    assert page.shown("status-result").startswith("+8613800138000 已登记。")
    # Shown, then filled and focused: a screen reader reads the answer out.
    assert chromium.execute_script("return document.activeElement.id") == "status-result"

    page.fill("complain-number", "+8613800138000")
    page.fill("complain-caller", "【某某银行】")
    when = page.element("complain-when")
    chromium.execute_script("arguments[0].value = arguments[1]", when, "2026-01-02T10:30")
    page.tick('input[name="channel"][value="sms"]')
    page.submit("complain-form")
    result = page.shown("complain-result")
    assert "谢谢：您的举报已记录。" in result
    from selenium.webdriver.common.by import By

    link = page.element("complain-result").find_element(By.LINK_TEXT, "查询举报进展")
    assert link.get_attribute("href").endswith("?lang=zh")
    page.leave(link.click)
    assert "正在处理中" in page.element("answer").text
    assert page.console() == []


def test_the_portal_scrubs_a_pasted_list_and_a_file(
    chromium: Any, server: Server, downloads: Path, tmp_path: Path
) -> None:
    server.register("+12125550001", "+12125550002")
    portal = open_portal(chromium, server, server.key("operator"))
    portal.fill("scrub-text", "+12125550001\n(212) 555-0002\n+12125550003\nnot a number\n")
    portal.submit("scrub-form")
    portal.wait(lambda: portal.element("count-total").text == "4", "the receipt's counts")
    counts = {n: portal.element(f"count-{n}").text for n in ("callable", "blocked", "invalid")}
    assert counts == {"callable": "1", "blocked": "2", "invalid": "1"}
    receipt = portal.element("receipt-id").text
    assert receipt and len(portal.element("receipt-sha256").text) == 64
    preview = portal.element("scrub-preview").text
    assert "input number status" in preview and "(212) 555-0002 +12125550002 blocked" in preview

    link = portal.element("scrub-download")
    assert link.get_attribute("href").startswith("blob:")
    assert link.get_attribute("download") == f"scrubbed-{receipt}.csv"
    link.click()
    saved = downloads / f"scrubbed-{receipt}.csv"
    portal.wait(saved.exists, "the download")
    assert saved.read_text().splitlines() == [
        "input,number,status",
        "+12125550001,+12125550001,blocked",
        "(212) 555-0002,+12125550002,blocked",
        "+12125550003,+12125550003,callable",
        "not a number,,invalid",
    ]

    dial_list = tmp_path / "dial-list.csv"
    dial_list.write_text("name,phone\nAda,+12125550001\nBob,+12125550004\n")
    portal.fill("scrub-text", "")
    portal.element("scrub-file").send_keys(str(dial_list))
    portal.fill("scrub-column", "phone")
    portal.tick("#scrub-only")
    portal.submit("scrub-form")
    portal.wait(lambda: portal.element("count-total").text == "2", "the file's counts")
    assert portal.element("count-blocked").text == "1"
    preview = portal.element("scrub-preview").text
    assert "name phone number status" in preview
    assert "Bob +12125550004 +12125550004 callable" in preview and "Ada" not in preview
    # Numbers typed after a file was chosen are the list scrubbed next, not the file again.
    portal.fill("scrub-text", "+12125550001")
    assert portal.element("scrub-file").get_attribute("value") == ""
    portal.submit("scrub-form")
    portal.wait(lambda: portal.element("count-total").text == "1", "the pasted list's counts")
    assert portal.element("count-blocked").text == "1"

    # A quoted cell holding a line break is one cell of one row in the preview too.
    noted = tmp_path / "noted.csv"
    noted.write_text('phone,note\n+12125550006,"first line\nsecond, line"\n+12125550004,plain\n')
    portal.fill("scrub-text", "")
    portal.element("scrub-file").send_keys(str(noted))
    portal.fill("scrub-column", "phone")
    portal.submit("scrub-form")
    portal.wait(lambda: portal.element("count-total").text == "2", "the noted file's counts")
    shown_rows = chromium.execute_script(
        "return [...document.querySelectorAll('#scrub-preview tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))"
    )
    assert shown_rows == [
        ["+12125550006", "first line\nsecond, line", "+12125550006", "callable"],
        ["+12125550004", "plain", "+12125550004", "callable"],
    ]

    # A dial list of many columns on a phone: its preview scrolls in its box, not the page.
    wide = tmp_path / "wide.csv"
    columns = [f"column_with_a_long_name_{i}" for i in range(12)]
    wide.write_text(",".join(["phone", *columns]) + "\n+12125550001," + ",".join(columns) + "\n")
    size = chromium.get_window_size()
    try:
        chromium.set_window_size(375, 800)
        portal.fill("scrub-text", "")
        portal.fill("scrub-column", "")
        portal.element("scrub-file").send_keys(str(wide))
        portal.submit("scrub-form")
        portal.wait(lambda: portal.element("count-total").text == "1", "the wide file's counts")
        inner = chromium.execute_script("return document.documentElement.clientWidth")
        assert chromium.execute_script("return document.documentElement.scrollWidth") <= inner
    finally:
        chromium.set_window_size(size["width"], size["height"])

    # A file saved again after it was chosen (fixed after a refusal): said so, not "network".
    portal.element("scrub-file").send_keys(str(dial_list))
    portal.fill("scrub-column", "phone")
    dial_list.write_text("name,phone\nAda,+12125550001\nCyd,+12125550005\n")
    os.utime(dial_list, (time.time() + 5, time.time() + 5))
    portal.submit("scrub-form")
    assert portal.shown("scrub-error").startswith("The file changed since you chose it.")

    # Forgetting the key takes this account's results off the screen (a shared computer).
    portal.element("key-forget").click()
    assert not portal.element("scrub-result").is_displayed()
    rows_left = "return document.querySelector('#scrub-preview tbody').childElementCount"
    assert chromium.execute_script(rows_left) == 0
    assert portal.element("scrub-download").get_attribute("href") is None
    assert [line for line in portal.console() if "ERR_UPLOAD_FILE_CHANGED" not in line] == []


def test_the_chinese_portal_looks_up_scrubs_and_lists_changes_in_chinese(
    chromium: Any, server: Server
) -> None:
    server.register("+8613800138000")
    portal = Page(chromium, server, "/portal?lang=zh")
    body = portal.element("main").text
    assert "查询单个号码" in body
    # Only what is English on purpose: API, CSV, SHA-256, the example region and format names.
    assert set(re.findall(r"[A-Za-z]{3,}", body)) <= {"API", "CSV", "csv", "SHA"}
    portal.submit("lookup-form")
    assert portal.shown("lookup-error") == "请填写要查询的电话号码。"
    portal.fill("lookup-number", "138 0013 8000")
    portal.submit("lookup-form")
    assert portal.shown("lookup-error") == "请先在上方粘贴您的 API 密钥，然后重试。"
    key = server.key("operator")
    portal.fill("key-input", key)
    portal.submit("key-form")
    assert portal.shown("key-state") == f"本标签页正在使用尾号为 {key[-4:]} 的密钥。"
    portal.fill("lookup-region", "cn")
    portal.submit("lookup-form")
    assert portal.shown("lookup-result") == "已拒收：+8613800138000 在拒收名单中：不得拨打或发送。"

    portal.fill("scrub-text", "+8613800138000\n+8613800138001\n")
    portal.submit("scrub-form")
    portal.wait(lambda: portal.element("count-total").text == "2", "the receipt's counts")
    assert portal.element("count-blocked").text == "1"
    portal.submit("changes-form")
    summary = portal.shown("changes-summary")
    assert re.match(r"\d+ 条变更。下一页的游标已填在上方：", summary), summary  # others' too
    assert "加入" in portal.element("changes-table").text
    assert portal.console() == []


def test_the_portal_asks_for_a_key_and_explains_a_wrong_one(chromium: Any, server: Server) -> None:
    portal = Page(chromium, server, "/portal")
    portal.fill("lookup-number", "+12125551234")
    portal.submit("lookup-form")
    assert "Paste your API key" in portal.shown("lookup-error")

    portal.fill("key-input", "not-a-key")
    portal.submit("key-form")
    portal.submit("lookup-form")
    portal.wait(lambda: "was not accepted" in portal.shown("lookup-error"))
    assert "not-a-key" not in chromium.current_url

    portal.fill("scrub-text", "+12125550100\n")
    portal.element("key-forget").click()
    assert portal.storage("sessionStorage") == {}
    assert portal.shown("key-state") == "No key in use."
    # What was typed and pasted, and the error about it, go with the key: the next person
    # at a shared computer finds none of this account's numbers.
    assert portal.element("lookup-number").get_attribute("value") == ""
    assert portal.element("scrub-text").get_attribute("value") == ""
    assert not portal.element("lookup-error").is_displayed()


def test_the_portals_errors_mark_the_field_they_are_about(chromium: Any, server: Server) -> None:
    """As the subscriber page's do: caught in the page or refused by the API, an error marks
    its field aria-invalid and names its box in the field's aria-describedby."""
    portal = Page(chromium, server, "/portal")

    def marked(field_id: str, box_id: str) -> bool:
        field = portal.element(field_id)
        described = (field.get_attribute("aria-describedby") or "").split()
        return field.get_attribute("aria-invalid") == "true" and box_id in described

    portal.submit("key-form")
    portal.shown("key-error")
    assert marked("key-input", "key-error")
    portal.submit("lookup-form")
    portal.shown("lookup-error")
    assert marked("lookup-number", "lookup-error")
    portal = open_portal(chromium, server, server.key("operator"))
    assert not marked("key-input", "key-error")
    portal.submit("scrub-form")
    portal.shown("scrub-error")
    assert marked("scrub-text", "scrub-error")
    portal.fill("scrub-text", "phone,name\n+12125551234,Ann\n")
    portal.choose("scrub-format", "text/csv")
    portal.fill("scrub-column", "telephone")
    portal.submit("scrub-form")
    portal.wait(lambda: marked("scrub-column", "scrub-error"), "the column marked")
    assert not marked("scrub-text", "scrub-error")
    portal.fill("changes-since", "not-a-cursor")
    portal.submit("changes-form")
    portal.wait(lambda: marked("changes-since", "changes-error"), "the cursor marked")
    portal.fill("changes-since", "")
    portal.fill("changes-limit", "100001")
    portal.submit("changes-form")
    portal.wait(lambda: marked("changes-limit", "changes-error"), "the limit marked")


def test_the_portal_shows_the_change_list(chromium: Any, server: Server) -> None:
    server.register("+12125550001", "+12125550002")
    portal = open_portal(chromium, server, server.key("operator"))
    portal.submit("changes-form")
    rows = portal.shown("changes-result")
    assert "2 changes." in rows
    assert "+12125550001 added" in rows and "+12125550002 added" in rows
    cursor = portal.element("changes-since").get_attribute("value")
    assert cursor
    server.register("+12125550003")
    portal.submit("changes-form")
    portal.wait(lambda: "1 change." in portal.shown("changes-result"))
    assert "+12125550003 added" in portal.shown("changes-result")
    assert portal.console() == []


def test_without_javascript_a_subscriber_registers_checks_and_deregisters(
    chromium_without_scripts: Any, server: Server
) -> None:
    """Every form of the subscriber page works with scripts off: each answers on a page of
    its own (registry/api/forms.py), and the number is blocked once the code is typed."""
    driver = chromium_without_scripts
    page = Page(driver, server, "/")
    assert "Without JavaScript each form opens its answer" in page.element("main").text
    page.fill("register-number", "(212) 555-0123")
    page.fill("register-region", "US")
    page.tick('input[name="allow_categories"][value="3"]')
    page.leave(lambda: page.submit("register-form"))
    assert "We sent a six-digit code to (212) 555-0123" in page.shown("answer")
    page.fill("code", server.code_for("+12125550123"))
    page.leave(lambda: page.submit("answer"))
    assert page.shown("answer").startswith("+12125550123 is registered.")
    operator = {"Authorization": f"Bearer {ADMIN_KEY}"}
    looked = server.http.get("/v1/numbers/+12125550123?category=1", headers=operator).json()
    assert looked["status"] == "blocked"
    looked = server.http.get("/v1/numbers/+12125550123?category=3", headers=operator).json()
    assert looked["reason"] == "category_allowed"

    page.leave(page.element("back").click)
    page.fill("status-number", "+1 212 555 0123")
    page.leave(lambda: page.submit("status-form"))
    assert page.shown("answer").startswith("+12125550123 is registered.")

    page = Page(driver, server, "/")
    page.fill("deregister-number", "+12125550123")
    sent = server.outbox_lines()
    page.leave(lambda: page.submit("deregister-form"))
    code = server.code_for("+12125550123", after=sent)
    page.fill("code", f"{code[:3]}-{code[3:]}")  # as some phones show it
    page.leave(lambda: page.submit("answer"))
    assert page.shown("answer").startswith("+12125550123 is not on the register now.")

    page = Page(driver, server, "/")
    page.fill("complain-number", "+12125550123")
    page.fill("complain-caller", "+13105550000")
    page.element("complain-when").send_keys("01022025\t1030AM")
    page.choose("complain-offset", "+05:30")
    page.leave(lambda: page.submit("complain-form"))
    assert "Thank you: your report was recorded." in page.shown("answer")


def test_without_javascript_the_portal_sends_nothing(
    chromium_without_scripts: Any, server: Server
) -> None:
    """Its forms posted the pasted key to /portal and showed a raw 405: with scripts off
    their buttons stay disabled, Enter in a field submits nothing, and the page says why."""
    driver = chromium_without_scripts
    page = Page(driver, server, "/portal")
    assert "This page needs JavaScript" in page.element("main").text
    buttons = driver.find_elements("css selector", 'button[type="submit"]')
    assert len(buttons) == 4 and not any(button.is_enabled() for button in buttons)
    page.fill("key-input", "dnc_not_a_real_key")
    page.element("key-input").send_keys("\n")
    time.sleep(0.3)
    assert driver.current_url == server.url + "/portal"
    assert "method_not_allowed" not in driver.page_source


def test_the_api_documentation_renders_from_this_server_alone(
    chromium: Any, server: Server
) -> None:
    """/docs draws every operation of /openapi.json with nothing fetched from elsewhere:
    the registry may run on a network with no way out (this test machine has none)."""
    page = Page(chromium, server, "/docs")
    operations = server.http.get("/openapi.json").json()["paths"]
    expected = sum(len(methods) for methods in operations.values())
    drawn = page.wait(
        lambda: len(chromium.find_elements("css selector", ".opblock")) >= expected,
        "Swagger UI to draw the operations",
    )
    assert drawn
    fetched = chromium.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched and all(url.startswith(server.url + "/") for url in fetched), fetched
    assert "/v1/numbers/{number}" in chromium.page_source
    assert page.console() == []


def test_pages_are_served_with_security_headers_and_kept_out_of_the_api_schema(
    client: TestClient,
) -> None:
    for path, kind in [
        ("/", "text/html"),
        ("/portal", "text/html"),
        ("/assets/app.css", "text/css"),
        ("/assets/portal.js", "text/javascript"),
    ]:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith(kind)
        assert answer.headers["content-security-policy"].startswith("default-src 'self';")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
    page = client.get("/").text
    assert "<script>" not in page and "style=" not in page  # nothing the CSP would refuse
    for code, name in rules.CATEGORIES.items():
        assert f'value="{code}"> {code}. {name}</label>' in page.replace("&amp;", "&")
    # The icon every page names, and the one browsers ask for without being told.
    for path in ("/favicon.ico", "/assets/favicon.svg"):
        icon = client.get(path)
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert icon.content.startswith(b"<svg")
    assert '<link rel="icon" href="/assets/favicon.svg"' in page
    missing = client.get("/assets/%2E%2E%2Fpyproject.toml")  # only the listed files
    assert missing.status_code == 404
    assert client.get("/assets/nothing.js").json()["error"]["code"] == "not_found"

    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/portal", "/assets/{name}"} & set(paths)


def test_every_page_file_is_package_data() -> None:
    """A non-editable install must carry the pages: pyproject's package-data lists them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["registry.web"]
    files = [
        p.name for p in (ROOT / "registry" / "web").iterdir() if p.is_file() and p.suffix != ".py"
    ]
    assert files and all(any(fnmatch(f, p) for p in patterns) for f in files if f[0] != ".")


def test_both_pages_fit_a_phone_screen(chromium: Any, server: Server) -> None:
    """375 CSS pixels wide, an iPhone's: no page scrolls sideways (the portal's category
    select, with its longest name, once made it)."""
    size = chromium.get_window_size()
    try:
        chromium.set_window_size(375, 800)
        for path in ("/", "/portal"):
            page = Page(chromium, server, path)
            inner = chromium.execute_script("return document.documentElement.clientWidth")
            wide = chromium.execute_script("return document.documentElement.scrollWidth")
            assert wide <= inner, (path, wide, inner)
            assert page.console() == []
    finally:
        chromium.set_window_size(size["width"], size["height"])


def test_a_form_sent_twice_while_waiting_sends_one_code(chromium: Any, server: Server) -> None:
    page = Page(chromium, server, "/")
    page.fill("register-number", "+1 212 555 0177")
    untick = "document.querySelector('#register-form input[name=channels][value=sms]').click()"
    chromium.execute_script(untick)  # calls only
    before = server.outbox_lines()
    chromium.execute_script(
        "const form = document.getElementById('register-form');"
        "form.querySelector('button[type=submit]').focus();"
        "form.requestSubmit(); form.requestSubmit(); form.requestSubmit();"
    )
    assert "code to +1 212 555 0177" in page.shown("register-sent")
    time.sleep(0.5)  # a second request, had one gone, would have landed by now
    sent = [json.loads(line) for line in server.outbox.read_text().splitlines()[before:]]
    assert [m["to"] for m in sent] == ["+12125550177"]
    page.fill("register-code", server.code_for("+12125550177"))
    page.submit("register-confirm")
    result = page.shown("register-result")
    assert "Blocked: calls." in result  # and so the liable are those who call, not write
    assert "Telemarketers who still call after" in result
    assert page.console() == []


def test_the_field_in_error_is_marked_invalid_and_described_by_its_error(
    chromium: Any, server: Server
) -> None:
    """One alert box per form says what is wrong; the field it is about carries
    aria-invalid and names the box in aria-describedby (its hint kept), until it is fixed."""
    page = Page(chromium, server, "/")

    def aria(element_id: str) -> tuple[str | None, str | None]:
        field = page.element(element_id)
        return field.get_attribute("aria-invalid"), field.get_attribute("aria-describedby")

    def ticks() -> list[tuple[str | None, str | None]]:
        from selenium.webdriver.common.by import By

        boxes = chromium.find_elements(By.CSS_SELECTOR, '#register-form input[name="channels"]')
        return [
            (b.get_attribute("aria-invalid"), b.get_attribute("aria-describedby")) for b in boxes
        ]

    # Caught in the page: no number.
    page.submit("register-form")
    assert "Enter the phone number." in page.shown("register-error")
    assert aria("register-number") == ("true", "register-number-hint register-error")
    assert aria("register-region") == (None, "register-region-hint")
    # Refused by the API: a number that is no number; the mark stays, not doubled.
    page.fill("register-number", "12345")
    page.submit("register-form")
    assert "That phone number is not valid" in page.shown("register-error")
    assert aria("register-number") == ("true", "register-number-hint register-error")
    # The region the API refuses is the field marked, and the number no longer is.
    page.fill("register-number", "+12125551234")
    page.fill("register-region", "ZZ")
    page.submit("register-form")
    assert "That region is not one we know" in page.shown("register-error")
    assert aria("register-region") == ("true", "register-region-hint register-error")
    assert aria("register-number") == (None, "register-number-hint")
    # No channel ticked: the boxes are marked.
    page.fill("register-region", "")
    for box in ('input[name="channels"][value="voice"]', 'input[name="channels"][value="sms"]'):
        chromium.execute_script(f"document.querySelector('#register-form {box}').click()")
    page.submit("register-form")
    assert "Tick calls, text messages or both" in page.shown("register-error")
    assert ticks() == [("true", "register-error")] * 2
    assert aria("register-region") == (None, "register-region-hint")
    # Fixed and sent: nothing is marked any more.
    page.tick('input[name="channels"][value="sms"]')
    page.submit("register-form")
    page.shown("register-sent")
    assert ticks() == [(None, None)] * 2
    assert aria("register-number") == (None, "register-number-hint")

    # The code step's field, caught in the page and refused by the API.
    page.fill("register-code", "abc")
    page.submit("register-confirm")
    assert "six digits" in page.shown("register-confirm-error")
    assert aria("register-code") == ("true", "register-confirm-error")
    right = server.code_for("+12125551234")
    page.fill("register-code", "000000" if right != "000000" else "111111")
    page.submit("register-confirm")
    assert "That code is not right" in page.shown("register-confirm-error")
    assert aria("register-code") == ("true", "register-confirm-error")
    page.fill("register-code", right)
    page.submit("register-confirm")
    page.shown("register-result")
    assert aria("register-code") == (None, None)

    # Another form's field: the complaint's caller, and the status check's number.
    page.fill("complain-number", "+12125551234")
    page.submit("complain-form")
    assert "Enter the number that called or wrote to you." in page.shown("complain-error")
    assert aria("complain-caller") == ("true", "complain-caller-hint complain-error")
    assert aria("complain-number") == (None, None)
    page.fill("status-number", "+1 212")
    page.submit("status-form")
    page.shown("status-error")
    assert aria("status-number") == ("true", "status-error")
    page.fill("status-number", "+12125551234")
    page.submit("status-form")
    page.shown("status-result")
    assert aria("status-number") == (None, None)
    assert page.console() == []
