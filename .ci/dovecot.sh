#!/usr/bin/env bash
# Start a throwaway Dovecot IMAP server for the e-mail channel tests (tests/test_channel_email.py).
#
# * Installs Dovecot from Debian packages (dovecot-core, dovecot-imapd) when it is missing (needs root).
# * Runs its own instance with its own configuration in $CHATCOMMERCE_DOVECOT_DIR
#   (default /tmp/chatcommerce-dovecot): IMAP only, on 127.0.0.1, plaintext LOGIN allowed (no TLS),
#   one test user in a passwd-file, Maildir storage, IDLE (always on in Dovecot) with a 1 s check.
# * Port: $CHATCOMMERCE_DOVECOT_PORT (default 10143), or the next free one when that is taken.
# * Idempotent: when the instance is already up it only prints its details again.
# * Writes the details as shell assignments to $DIR/env (the tests read that file) and prints them:
#     DOVECOT_HOST=127.0.0.1 DOVECOT_PORT=10143 DOVECOT_USER=... DOVECOT_PASSWORD=...
#
# `bash .ci/dovecot.sh stop` stops the instance. Dovecot 2.3 (Debian 12) configuration syntax.
set -euo pipefail

DIR="${CHATCOMMERCE_DOVECOT_DIR:-/tmp/chatcommerce-dovecot}"
PORT="${CHATCOMMERCE_DOVECOT_PORT:-10143}"
TEST_USER="shop@example.test"
TEST_PASSWORD="shop-test-password"
CONF="$DIR/dovecot.conf"
ENV_FILE="$DIR/env"
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "dovecot.sh: $*" >&2; }

# The greeting "* OK" on 127.0.0.1:$1 within 2 s?
greets() (
  line=""
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || exit 1
  IFS= read -r -t 2 line <&3 || true
  [[ "$line" == "* OK"* ]]
)

# Anything listening on 127.0.0.1:$1?
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() {
  [[ -f "$ENV_FILE" && -f "$DIR/run/master.pid" ]] || return 1
  kill -0 "$(cat "$DIR/run/master.pid")" 2>/dev/null || return 1
  # shellcheck disable=SC1090
  local port; port="$(. "$ENV_FILE"; echo "$DOVECOT_PORT")"
  greets "$port"
}

stop_instance() {
  if [[ -f "$CONF" ]] && command -v dovecot >/dev/null 2>&1; then
    dovecot -c "$CONF" stop >/dev/null 2>&1 || true
  fi
  if [[ -f "$DIR/run/master.pid" ]]; then
    local pid; pid="$(cat "$DIR/run/master.pid")"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}

if [[ ! "$PORT" =~ ^[0-9]+$ ]]; then
  log "CHATCOMMERCE_DOVECOT_PORT must be a port number, not '$PORT'"
  exit 1
fi

if [[ "${1:-}" == "stop" ]]; then
  stop_instance
  exit 0
fi

if running; then
  log "already running ($DIR)"
  cat "$ENV_FILE"
  exit 0
fi

if ! command -v dovecot >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    log "Dovecot is not installed and this is not root: install dovecot-core and dovecot-imapd"
    exit 1
  fi
  log "installing dovecot-core dovecot-imapd from Debian packages"
  apt-get update -qq
  # policy-rc.d (when present) keeps the system-wide service from starting; we run our own instance.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dovecot-core dovecot-imapd >/dev/null
fi

version="$(dovecot --version | cut -d' ' -f1)"
case "$version" in
  2.3.*) ;;
  *) log "Dovecot $version found; this script writes Dovecot 2.3 configuration"; exit 1 ;;
esac

# Start from an empty directory; refuse to touch one this script did not create.
if [[ -d "$DIR" && -n "$(ls -A "$DIR")" && ! -f "$DIR/.chatcommerce-dovecot" ]] \
   && ! grep -qs "written by .ci/dovecot.sh" "$DIR/dovecot.conf"; then
  log "$DIR exists and was not made by this script; set CHATCOMMERCE_DOVECOT_DIR to another path"
  exit 1
fi
stop_instance
rm -rf "$DIR"
mkdir -p "$DIR/run" "$DIR/state" "$DIR/mail"
touch "$DIR/.chatcommerce-dovecot"
chmod 755 "$DIR"

for _ in $(seq 1 50); do
  port_taken "$PORT" || break
  PORT=$((PORT + 1))
done
if port_taken "$PORT"; then
  log "no free port found near ${CHATCOMMERCE_DOVECOT_PORT:-10143}"
  exit 1
fi

if [[ "$(id -u)" == 0 ]]; then
  # Dovecot's own unprivileged users (created by the dovecot-core package); mail is stored as nobody.
  id dovenull >/dev/null 2>&1 && id dovecot >/dev/null 2>&1 || { log "users dovecot/dovenull missing"; exit 1; }
  mail_uid="$(id -u nobody)"
  mail_gid="$(id -g nobody)"
  chown "$mail_uid:$mail_gid" "$DIR/mail"
  privileges="default_login_user = dovenull
default_internal_user = dovecot"
  login_chroot=""
else
  me="$(id -un)"
  mail_uid="$(id -u)"
  mail_gid="$(id -g)"
  privileges="default_login_user = $me
default_internal_user = $me
default_internal_group = $(id -gn)"
  login_chroot="  chroot =
  user = $me"
fi

printf '%s:{PLAIN}%s::::::\n' "$TEST_USER" "$TEST_PASSWORD" >"$DIR/passwd"
chmod 644 "$DIR/passwd"  # a throwaway test password; the auth worker runs as an unprivileged user

cat >"$CONF" <<EOF
# Throwaway test instance written by .ci/dovecot.sh; not for production.
base_dir = $DIR/run
state_dir = $DIR/state
instance_name = chatcommerce-test
log_path = $DIR/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
$privileges
first_valid_uid = 1
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$DIR/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
$login_chroot
}
service anvil {
  chroot =
}
EOF

# Detach from our stdout/stderr: a caller reading them through a pipe must not wait for the daemon.
dovecot -c "$CONF" </dev/null >>"$DIR/startup.log" 2>&1 || { log "dovecot failed to start:"; cat "$DIR/startup.log" >&2; exit 1; }
for _ in $(seq 1 100); do
  greets "$PORT" && break
  sleep 0.1
done
if ! greets "$PORT"; then
  log "Dovecot did not answer on 127.0.0.1:$PORT; its log:"
  tail -n 30 "$DIR/dovecot.log" >&2 || true
  exit 1
fi

cat >"$ENV_FILE" <<EOF
DOVECOT_HOST=127.0.0.1
DOVECOT_PORT=$PORT
DOVECOT_USER=$TEST_USER
DOVECOT_PASSWORD=$TEST_PASSWORD
EOF
log "started Dovecot $version on 127.0.0.1:$PORT ($DIR)"
cat "$ENV_FILE"
