"""The signals that stop a runegen command, and the word each is reported by: Ctrl-C, SIGTERM
(kill, systemd's stop, docker stop, Kubernetes) and SIGHUP (a closed terminal). The CLI, training's
checkpointing stop and tf.distribute's cluster wait all handle the same three."""

import signal

STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated",
                **({signal.SIGHUP: "hung up"} if hasattr(signal, "SIGHUP") else {})}


class Stopped(BaseException):
    """Ctrl-C, SIGTERM (kill, systemd's stop, docker stop) or SIGHUP (a closed terminal) outside
    training's own handling, which checkpoints first: the command unwinds as from an exception, so
    that an atomic write's temporary file is removed (the signals' default left `.samples-xxxx.png`
    files behind), then the process ends by the signal itself, as Python's own Ctrl-C does, so
    that a calling shell script stops too and systemd counts a SIGTERM as a clean stop. Not a
    KeyboardInterrupt: typer turns that into a silent exit 130."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number = number


_heard: list[int] = []  # the stop signals the CLI heard in this command, in case a raise was lost


def heard(number: int) -> None:
    _heard.append(number)


def forget() -> None:
    _heard.clear()


def stop_if_heard() -> None:
    """Raise Stopped where a stop signal was heard and its exception lost: an extension module's
    import turns whatever is raised while it loads into ImportError ("initialization failed"), which
    was read as "onnxruntime is not installed": `generate` then drew with the int8 TFLite model,
    replaced its --out, and said nothing of the Ctrl-C. Called where an import's failure is handled."""
    if _heard:
        raise Stopped(_heard[0])
