"""``service.heap``: the C heap settings of the service's main process (glibc)."""

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In a process of its own (mallopt changes the whole process): free a mapped 8 MiB block, which
# raises glibc's default mapping threshold to 8 MiB, then allocate 512 KiB and print how many
# mapped blocks that added (mallinfo2's hblks).
PROBE = """
import ctypes, sys
from service.heap import settle_service_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "settled":
    assert settle_service_heap()
big = bytearray(8 * 2**20)
del big
before = libc.mallinfo2().hblks
block = bytearray(512 * 1024)
print(libc.mallinfo2().hblks - before)
"""


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc 2.33 or later only")
def test_the_service_heap_maps_large_blocks_apart_after_a_larger_one_was_freed():
    def mapped_blocks(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT,
                             check=True, timeout=60)
        return int(run.stdout)

    assert mapped_blocks("default") == 0  # carved from the heap: glibc raised its threshold
    assert mapped_blocks("settled") == 1  # a mapping of its own, unmapped when freed
