"""The signals that stop a runegen command, and the word each is reported by: Ctrl-C, SIGTERM
(kill, systemd's stop, docker stop, Kubernetes) and SIGHUP (a closed terminal). The CLI, training's
checkpointing stop and tf.distribute's cluster wait all handle the same three."""

import signal

STOP_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated",
                **({signal.SIGHUP: "hung up"} if hasattr(signal, "SIGHUP") else {})}
