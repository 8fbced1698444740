import sys
from pathlib import Path

# fakes.py sits next to the tests; the package itself comes from src/ when not installed.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
