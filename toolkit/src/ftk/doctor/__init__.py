"""`ftk doctor`: preflight checks for the host and each stage, as a table of PASS/WARN/FAIL with the fix.

A stage adds checks by creating `ftk/doctor/checks_<stage>.py` with functions decorated by
`ftk.doctor.registry.check`; modules named `checks_*` are discovered automatically (no central list to edit).
"""
