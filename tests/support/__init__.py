"""What the tests share, importable as `support.<module>` (pyproject.toml puts tests/ on the path).

paths         the repository, the recordings in tests/data, the bundled models, the golden records
waiting       polling a condition with a timeout, or until progress stalls
processes     `edge` as a user runs it: a command, the daemon (`edge run`) and the station as subprocesses
config        a daemon configuration written as TOML
records       what the daemon and the station wrote: the daily files, the station's database
audio         recordings converted for a test
sources       the watched folder driven in-process
models        small ONNX models built with onnx.helper
broker        a real mosquitto on 127.0.0.1, a subscriber, relays that misbehave as brokers do
certificates  a private CA and certificates for TLS
disks         a small tmpfs to fill up and remount read-only
pulse         a private PulseAudio server: a virtual microphone that plays recordings
"""
