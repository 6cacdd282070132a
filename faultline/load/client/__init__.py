"""The client side of a drill's load, for a system's locustfile (docs/contracts.md).

A workload is a Locust file whose users subclass
:class:`faultline.load.client.user.JepsenUser`: each operation is recorded as ``invoke``
then ``ok`` / ``fail`` / ``info`` in this process's history (:mod:`faultline.history`),
choices come from a seeded RNG, pacing and the load shape follow the scenario.

Import :mod:`faultline.load.client.user` only inside Locust: importing Locust
monkey-patches the process with gevent. This package itself imports nothing of Locust
(``_shapes``, ``_relay`` and ``_stats`` are plain Python, tested without it).
"""
