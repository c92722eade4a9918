# Sourced by scripts/serve and scripts/test: create .venv from requirements.txt when it is missing,
# and reinstall whenever requirements.txt is newer than the last install.
STAMP=.venv/.requirements-installed
if [[ ! -x .venv/bin/python ]]; then
    PYTHON=$(command -v python3.11 || command -v python3 || true)
    if [[ -z "$PYTHON" ]]; then
        echo "smotra: python3.11 (or python3 >= 3.11) is required" >&2
        exit 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "smotra: $PYTHON is $("$PYTHON" -V 2>&1); Python 3.11 or newer is required" >&2
        exit 1
    fi
    echo "smotra: creating .venv with $("$PYTHON" -V 2>&1)" >&2
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi
if [[ ! -f "$STAMP" || requirements.txt -nt "$STAMP" ]]; then
    echo "smotra: installing requirements.txt into .venv" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    touch "$STAMP"
fi
