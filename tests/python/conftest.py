"""pytest configuration for tests/python.

check_readback.py is a script the Rust integration tests run with arguments (see
crates/landfall/tests/readback.rs); it is not a test module and must never be imported by pytest.
"""

collect_ignore = ["check_readback.py"]
