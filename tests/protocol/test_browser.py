"""The web console in a real browser: Debian's chromium, headless, driven
by Selenium through chromedriver. The page loads from mqd's WebSocket port,
subscribes, shows a message a TCP client sends, and sends one the TCP
client receives. ./dev.sh installs chromium, chromium-driver and
python3-selenium; without them this module says so and is skipped.

MQD_SCREENSHOT=PATH also saves the screenshot there (docs/console.png is
one, made so)."""

import os
import shutil

import pytest

from mqd_harness import Server, send, subscribe

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="python3-selenium is not installed (./dev.sh deps installs it)")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    if not CHROMIUM or not os.path.exists(DRIVER):
        pytest.skip("chromium or chromium-driver is not installed (./dev.sh deps installs them)")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def ws_port(server):
    for line in server.stderr().splitlines():
        if "listening for WebSocket" in line:
            return int(line.rsplit(":", 1)[1])
    raise AssertionError(server.stderr())


def test_the_console_subscribes_shows_and_sends(browser, tmp_path):
    server = Server("--websocket", "0")
    tcp = server.client()
    subscribe(tcp, "back")
    send(tcp, "news", "cached before the page came")   # index 0, replayed
    browser.get(f"http://127.0.0.1:{ws_port(server)}/")
    wait = WebDriverWait(browser, 20)
    assert browser.title == "mqd console"
    browser.find_element(By.ID, "connect-button").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "state"), "connected"))
    topic = browser.find_element(By.ID, "sub-topic")
    topic.send_keys("news")
    browser.find_element(By.ID, "subscribe-button").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "topics"), "cached before the page came"))
    send(tcp, "news", "hello from tcp")
    wait.until(EC.text_to_be_present_in_element((By.ID, "topics"), "hello from tcp"))
    items = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#topics li")]
    assert items == ["#1hello from tcp", "#0cached before the page came"] or \
        items == ["#1 hello from tcp", "#0 cached before the page came"], items
    browser.find_element(By.ID, "send-topic").send_keys("back")
    browser.find_element(By.ID, "send-msg").send_keys("from the browser")
    browser.find_element(By.ID, "send-button").click()
    got = tcp.line()
    assert got["topic"] == "back" and got["msg"] == "from the browser" and got["index"] == 0
    wait.until(EC.text_to_be_present_in_element((By.ID, "log"), 'send "back": success'))
    if os.environ.get("MQD_SCREENSHOT"):
        assert browser.save_screenshot(os.environ["MQD_SCREENSHOT"])
    # an error is shown plainly
    browser.find_element(By.ID, "send-topic").clear()
    browser.find_element(By.ID, "send-topic").send_keys("x" * 2000)
    browser.find_element(By.ID, "send-button").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "log"), "Topic too long"))
    shot = tmp_path / "console.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
