"""`make bench`: run every benchmark and print the ratios."""

from __future__ import annotations

import asyncio

from tests.bench import ssh_poll, startup


def main() -> None:
    print("dcconsole benchmarks (ratios from one run on this machine)")
    s = startup.run()
    print(
        f"cold start to first frame: dcc {s['dcc_s'] * 1000:.0f} ms, "
        f"bare Textual app {s['bare_s'] * 1000:.0f} ms, ratio {s['ratio']:.2f}x"
    )
    p = asyncio.run(ssh_poll.run(hosts=100))
    print(
        f"one poll of {p['hosts']:.0f} lab hosts over SSH: cold pool {p['cold_s'] * 1000:.0f} ms, "
        f"warm pool {p['warm_s'] * 1000:.0f} ms, ratio cold/warm {p['ratio']:.1f}x"
    )


if __name__ == "__main__":
    main()
