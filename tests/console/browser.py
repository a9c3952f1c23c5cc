"""Headless Chromium for the console's browser tests and scripts (Selenium with the Debian
``chromium`` and ``chromium-driver``; browsers cannot be downloaded here)."""

from __future__ import annotations

import shutil

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def available() -> bool:
    """Whether Chromium and its driver are installed (``make system-deps`` installs them)."""
    return bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER))


def chromium(width: int = 1400, height: int = 1000) -> webdriver.Chrome:
    """A headless Chromium driven by chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def sign_in(driver: webdriver.Chrome, url: str, user: str, password: str) -> None:
    """Sign in on the console at ``url`` and wait for the overview."""
    driver.delete_all_cookies()
    driver.get(url + "/login")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.rstrip("/") == url)
