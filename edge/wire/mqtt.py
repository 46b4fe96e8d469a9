"""What the box's publisher and the station's subscriber share: the broker settings, the topics, a client built
from them, the reconnect back-off, and plain words for a broker's refusal.

Topics: `<prefix>/<box>/events`, `/alerts`, `/health` (records, QoS 1) and `/status` (retained).
"""

from __future__ import annotations

import os
import random
import re
import ssl
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

KINDS = ("events", "alerts", "health", "status", "clips")
PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}


class BrokerConfig(BaseModel):
    """Where the broker is and how to log in to it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = Field(..., min_length=1, description="Broker host name or address.")
    port: int | None = Field(None, ge=1, le=65535, description="Broker port (default 1883, or 8883 with TLS).")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT version; auto tries 5 and falls back to 3.1.1 when the broker refuses it."
    )
    keepalive: int = Field(
        60, ge=5, le=3600, description="Seconds between pings; a silent link is noticed within 1.5 times this."
    )
    username: str | None = Field(None, description="User name, if the broker asks for one.")
    password: SecretStr | None = Field(None, description="Password (better: password_file).")
    password_file: Path | None = Field(
        None,
        description="File holding the password; relative to $CREDENTIALS_DIRECTORY when systemd passes "
        "credentials (LoadCredential=).",
    )
    tls: bool = Field(False, description="Use TLS with the system's CAs (implied by ca_file).")
    ca_file: Path | None = Field(None, description="CA certificate(s) that signed the broker's certificate.")
    cert_file: Path | None = Field(None, description="Client certificate, for brokers that require one.")
    key_file: Path | None = Field(None, description="Private key of the client certificate.")

    @model_validator(mode="after")
    def consistent(self) -> BrokerConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port or (8883 if self.uses_tls else 1883)

    def secret(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        path = self.password_file
        if not path.is_absolute() and os.environ.get("CREDENTIALS_DIRECTORY"):
            path = Path(os.environ["CREDENTIALS_DIRECTORY"]) / path
        return path.read_text(encoding="utf-8").rstrip("\r\n")

    def secret_problem(self) -> str | None:
        """Why the password file cannot be read (None when it can): in words that never hold the password."""
        try:
            self.secret()
        except (OSError, UnicodeDecodeError) as error:
            return f"cannot read {self.password_file}: {getattr(error, 'strerror', None) or error}"
        return None


# A box id is one topic level, a file name and a column in the station's tables: letters, digits, '.', '_' and
# '-', starting with a letter or digit (a hostname fits), at most 64 characters.
BOX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_PREFIX = 128


def box_id_problem(box: str) -> str | None:
    """Why `box` cannot name a box (None when it can): a '/', '+' or '#' would change the topic, so that the
    broker accepts the box's records and no station ever receives them."""
    if BOX_ID.fullmatch(box):
        return None
    return (
        f"box id {box!r} is not 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit"
        if len(box) <= 200
        else f"box id of {len(box)} characters is longer than 64"
    )


def prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot start the topics (None when it can): one or more '/'-separated levels, none empty,
    without the wildcards '+' and '#', control characters, or a leading '$' (the broker's own topics)."""
    if not prefix or len(prefix) > MAX_PREFIX:
        return f"topic prefix must be 1 to {MAX_PREFIX} characters"
    if prefix.startswith("$"):
        return f"topic prefix {prefix!r} starts with '$', which brokers keep for their own topics"
    if any(not level for level in prefix.split("/")):
        return f"topic prefix {prefix!r} has an empty level (a leading, trailing or double '/')"
    bad = sorted({c for c in prefix if c in "+#" or not c.isprintable()})
    if bad:
        return f"topic prefix {prefix!r} holds {', '.join(map(repr, bad))}: no wildcards or control characters"
    return None


def topic(prefix: str, box: str, kind: str) -> str:
    return f"{prefix}/{box}/{kind}"


def new_client(
    config: BrokerConfig, client_id: str, protocol: mqtt.MQTTProtocolVersion, clean_session: bool = True
) -> mqtt.Client:
    """A paho client with the credentials and TLS of `config`; it connects when asked. OSError or ValueError
    for a password file or certificate that cannot be read. `clean_session` applies to MQTT 3.1.1 (MQTT 5
    asks for it at connect time)."""
    clean = None if protocol == mqtt.MQTTv5 else clean_session
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=clean,
        reconnect_on_failure=False,
    )
    if config.username is not None:
        client.username_pw_set(config.username, config.secret())
    if config.uses_tls:
        client.tls_set(
            ca_certs=str(config.ca_file) if config.ca_file else None,
            certfile=str(config.cert_file) if config.cert_file else None,
            keyfile=str(config.key_file) if config.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return client


def version_name(protocol: int) -> str:
    return next(name for name, value in PROTOCOLS.items() if value == protocol)


def protocols(config: BrokerConfig) -> list[mqtt.MQTTProtocolVersion]:
    """The MQTT versions to try, in order."""
    return list(PROTOCOLS.values()) if config.protocol == "auto" else [PROTOCOLS[config.protocol]]


def refused_version(reason: ReasonCode) -> bool:
    """The broker does not speak the version we asked for (paho reads a 3.1.1 broker's answer to an MQTT 5
    CONNECT as this code)."""
    return reason.value == 0x84


REFUSALS = {
    0x86: "wrong user name or password (check username and password_file)",
    # mosquitto answers a wrong password with this code too
    0x87: "not authorized: wrong user name or password, or a user without rights on this broker "
    "(check username and password_file)",
    0x85: "client id rejected",
    0x84: "MQTT version not supported by the broker",
    0x88: "broker unavailable",
    0x89: "broker busy",
    0x8A: "banned by the broker",
}


def refusal(reason: ReasonCode) -> str:
    """A broker's CONNACK refusal in words a ranger can act on (paho gives 3.1.1 codes as MQTT 5 ones)."""
    return REFUSALS.get(reason.value, str(reason))


class Backoff:
    """Capped exponential back-off with jitter: a box behind a flaky link neither hammers the broker nor waits
    long once it is back. Each delay is drawn between half and all of min(cap, first * 2**n)."""

    def __init__(self, first: float, cap: float, rng: random.Random | None = None):
        self.first, self.cap = first, cap
        self.failures = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * 2 ** min(self.failures, 30))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
