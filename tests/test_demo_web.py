"""`make demo-web` (scripts/demo_web.py) from start to end: its own anvil, a guarded Safe with
proposals, `treasury serve`, the printed URLs answering 200, then everything stopped."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_web_once_prints_the_page_urls_and_they_answer():
    env = {**os.environ, "DEMO_WEB_ONCE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_web.py")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    safe_page = re.search(r"Safe page:\s+(http://127\.0\.0\.1:\d+/safes/0x[0-9a-fA-F]{40})$", done.stdout, re.MULTILINE)
    proposal_pages = re.findall(r"^\s+proposal page [^:]*:\s+(http://127\.0\.0\.1:\d+/proposals/[0-9a-f]+)$", done.stdout, re.MULTILINE)
    assert safe_page, done.stdout
    assert len(proposal_pages) == 3, done.stdout
    assert "every page answered 200" in done.stdout
    assert "server and anvil stopped" in done.stdout
    anvil = re.search(r"anvil at http://127\.0\.0\.1:(\d+)", done.stdout)
    assert anvil, done.stdout
    for port in (int(anvil[1]), int(re.search(r":(\d+)/", safe_page[1])[1])):  # nothing listens there any more
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
