"""Who may do what on the station's pages: users with hashed passwords, sessions, CSRF, guests, a proxy's user."""

from __future__ import annotations

import socket
import sqlite3

import pytest
import requests

from edge.station.users import hash_password, password_matches
from edge.station.web.auth import Throttle, local_path
from edge.station.web.site import listen_address
from support.broker import free_port
from support.browser import browser
from support.processes import StationProcess, edge_cli
from support.web import csrf_of, login_csrf_of, sign_in, station_pages, users


def test_passwords_are_hashed_with_a_salt():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and "correct horse" not in first
    assert password_matches(first, "correct horse")
    assert not password_matches(first, "correct horsE")
    assert not password_matches("not a hash", "correct horse")


def test_after_sign_in_only_pages_of_this_site():
    assert local_path("/alerts?box=a") == "/alerts?box=a"
    for elsewhere in ("https://evil.example", "//evil.example/x", "/\\evil.example", "", None):
        assert local_path(elsewhere) == "/"


def test_listen_address():
    assert listen_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert listen_address("[::1]:0") == ("::1", 0)
    for wrong in ("8080", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError):
            listen_address(wrong)


def test_a_guest_looks_and_a_ranger_signs_in_and_out(tmp_path):
    with station_pages(tmp_path) as url:
        users(tmp_path / "station.sqlite", ("ana", "ranger", "ranger-password"))
        guest = requests.get(url)
        assert guest.status_code == 200 and "<h1>Boxes</h1>" in guest.text and "Sign in" in guest.text
        assert "frame-ancestors 'none'" in guest.headers["content-security-policy"]
        assert guest.headers["x-content-type-options"] == "nosniff"
        session = requests.Session()
        signed = sign_in(session, url, "ana", "ranger-password")
        assert signed.status_code == 200 and "ana (ranger)" in signed.text
        cookie = next(c for c in session.cookies if c.name == "edge_session")
        assert cookie.has_nonstandard_attr("HttpOnly")
        db = sqlite3.connect(tmp_path / "station.sqlite")
        assert db.execute("SELECT count(*) FROM sessions WHERE token = ?", (cookie.value,)).fetchone()[0] == 0
        # Signing out needs the session's CSRF token: a form on another site cannot sign a ranger out.
        assert session.post(url + "logout").status_code == 403
        out = session.post(url + "logout", data={"csrf": csrf_of(signed)})
        assert out.status_code == 200 and "Sign in" in out.text
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


def test_wrong_passwords_lock_the_name(tmp_path):
    with station_pages(tmp_path) as url:
        users(tmp_path / "station.sqlite", ("ana", "ranger", "ranger-password"))
        session = requests.Session()
        for _ in range(5):
            wrong = sign_in(session, url, "ana", "wrong-password")
            assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
        locked = sign_in(session, url, "ana", "ranger-password")
        assert locked.status_code == 401 and "Too many failed attempts" in locked.text
        stolen_form = session.post(url + "login", data={"name": "ana", "password": "ranger-password", "next": "/"})
        assert "The form had expired" in stolen_form.text


def test_no_anonymous_visitors(tmp_path):
    with station_pages(tmp_path, anonymous="none") as url:
        page = requests.get(url + "?x=1", allow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/%3Fx%3D1"
        assert requests.get(url + "login").status_code == 200


def test_a_proxy_names_the_user_only_from_its_address(tmp_path):
    with station_pages(tmp_path, auth_header="Remote-User", trusted_proxies=["127.0.0.1"]) as url:
        users(tmp_path / "station.sqlite", ("ana", "admin", "admin-password"))
        assert "ana (admin)" in requests.get(url, headers={"Remote-User": "ana"}).text
        assert "bo (guest)" in requests.get(url, headers={"Remote-User": "bo"}).text
    with station_pages(tmp_path, auth_header="Remote-User", trusted_proxies=["10.0.0.1"]) as url:
        assert "ana (" not in requests.get(url, headers={"Remote-User": "ana"}).text


def test_users_command(tmp_path):
    db = tmp_path / "station.sqlite"
    password = tmp_path / "password"
    password.write_text("a long password\n")
    edge_cli("station", "users", "add", "ana", "--db", str(db), "--role", "admin", "--password-file", str(password))
    again = edge_cli("station", "users", "add", "ana", "--db", str(db), "--password-file", str(password), check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    short = tmp_path / "short"
    short.write_text("short\n")
    weak = edge_cli("station", "users", "add", "bo", "--db", str(db), "--password-file", str(short), check=False)
    assert weak.returncode == 1 and "8 to" in weak.stderr and "short" not in weak.stderr.replace("8 to", "")
    assert edge_cli("station", "users", "list", "--db", str(db)).stdout.startswith("ana\tadmin\t")
    edge_cli("station", "users", "remove", "ana", "--db", str(db))
    assert edge_cli("station", "users", "list", "--db", str(db)).stdout == ""


def test_the_station_serves_its_pages_and_stops_on_a_taken_address(broker, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        taken.listen()
        refused = StationProcess(broker, tmp_path / "a.sqlite", "--http", f"127.0.0.1:{port}")
        assert refused.wait_exit(120) == 1
        assert f"cannot serve the pages on 127.0.0.1:{port}" in refused.stderr_now()
    station = StationProcess(broker, tmp_path / "b.sqlite", "--http", f"127.0.0.1:{port}")
    try:
        station.wait_log("web_started")
        with browser() as chromium:
            page = chromium.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            assert page.inner_text("h1") == "Boxes"
        assert station.terminate() == 0
    finally:
        station.close()


def test_http_settings_from_the_file_and_the_options_over_them(broker, tmp_path):
    config = tmp_path / "station.toml"
    config.write_text('[http]\naddress = "127.0.0.1:0"\nanonymous = "none"\nsession_days = 7\n')
    station = StationProcess(broker, tmp_path / "a.sqlite", "--config", str(config))
    try:
        url = station.wait_log("web_started", anonymous="none")["url"]
        assert requests.get(url, allow_redirects=False).status_code == 303  # sign in first
        assert station.terminate() == 0
    finally:
        station.close()
    port = free_port()
    station = StationProcess(
        broker, tmp_path / "a.sqlite", "--config", str(config), "--http", f"127.0.0.1:{port}", "--anonymous", "guest"
    )
    try:
        assert station.wait_log("web_started")["url"] == f"http://127.0.0.1:{port}/"
        assert requests.get(f"http://127.0.0.1:{port}/").status_code == 200
        assert station.terminate() == 0
    finally:
        station.close()
    config.write_text('[http]\naddress = "no port"\n')
    wrong = edge_cli(
        "station", "--broker", "127.0.0.1:1", "--db", str(tmp_path / "b.sqlite"), "--config", str(config), check=False
    )
    assert wrong.returncode == 2 and "http.address" in wrong.stderr


def test_bodies_are_capped_before_any_route_reads_them(tmp_path):
    with station_pages(tmp_path) as url:
        big = {"name": "ana", "password": "x" * 100_000, "csrf": "x"}
        assert requests.post(url + "login", data=big).status_code == 413  # from its Content-Length

        def chunks():
            for _ in range(100):
                yield b"a" * 4096

        form = {"content-type": "application/x-www-form-urlencoded"}
        streamed = requests.post(url + "api/marks", data=chunks(), headers=form)
        assert streamed.status_code == 413  # chunked: refused once more than the cap has come
        assert requests.get(url).status_code == 200


def test_refusals_never_echo_what_was_sent(tmp_path):
    with station_pages(tmp_path) as url:
        secret = "hunter2-" + "s" * 1100  # over the longest password
        session = requests.Session()
        csrf = login_csrf_of(session.get(url + "login"))
        refused = session.post(url + "login", data={"name": "ana", "password": secret, "csrf": csrf})
        assert refused.status_code == 422 and "password" in refused.json()["error"] and "hunter2" not in refused.text
        # A token that is not ASCII is a wrong token, not a server error.
        odd = session.post(url + "login", data={"name": "ana", "password": "p" * 10, "csrf": "é"})
        assert odd.status_code == 401 and "The form had expired" in odd.text
        # The sign-in page says only its own words.
        phishing = requests.get(url + "login", params={"problem": "The station moved to evil.example"})
        assert phishing.status_code == 200 and "evil.example" not in phishing.text


def test_pages_are_not_cached_and_only_named_hosts_are_answered(tmp_path):
    with station_pages(tmp_path, hosts=["station.example.org", "127.0.0.1"]) as url:
        page = requests.get(url)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert requests.get(url, headers={"Host": "evil.example"}).status_code == 400
        assert requests.get(url, headers={"Host": "station.example.org"}).status_code == 200


def test_forwarded_addresses_are_not_believed(tmp_path):
    with station_pages(tmp_path, auth_header="Remote-User", trusted_proxies=["10.0.0.2"]) as url:
        users(tmp_path / "station.sqlite", ("ana", "admin", "admin-password"))
        spoofed = requests.get(url, headers={"Remote-User": "ana", "X-Forwarded-For": "10.0.0.2"})
        assert "ana (" not in spoofed.text


def test_sign_in_attempts_are_counted_per_name_and_address_before_the_password_is_checked():
    throttle = Throttle()
    assert all(throttle.attempt("ana", "192.0.2.1") for _ in range(5))
    assert not throttle.attempt("ana", "192.0.2.1")  # that address is done for a while
    assert throttle.attempt("ana", "127.0.0.1")  # the ranger at the station is not locked out by it
    for address in range(44):
        assert throttle.attempt("ana", f"198.51.100.{address}")
    assert not throttle.attempt("ana", "203.0.113.9")  # 50 for the name from anywhere: enough guessing
    assert throttle.attempt("bo", "192.0.2.1")
    assert not throttle.check(None, "anything")  # a name that is not there: refused, after a hash all the same
    assert throttle.check(hash_password("correct horse"), "correct horse")
