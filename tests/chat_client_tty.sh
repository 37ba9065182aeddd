#!/usr/bin/env bash
# Drives examples/chat_client through a real pseudo-terminal (tmux) against
# examples/chat_server on a free port, and once more through pipes:
#   - on a terminal: the nickname prompt appears; a message from another
#     client arrives while a line is half typed, is printed above it, and
#     the typed text is intact afterwards and is sent whole; QUIT exits with
#     a message and status 0, and the terminal's modes are as before;
#   - line editing: Left and an insertion in the middle, Home/End, Up
#     recalls the lines sent before; a message arriving with the cursor in
#     the middle of the line, and while a long line wraps, leaves the line
#     and the cursor as they were; a narrower then a wider window leaves
#     exactly one prompt (capture-pane, history included);
#   - the server restarts: the client reconnects and takes its nickname
#     again; the server shuts down for good: the client says so and exits;
#   - a network drop (a relay resets the connection and refuses new ones for
#     a while): the client resumes its session, shows each message sent
#     meanwhile once, and the room sees no leave (needs python3);
#   - in a pipe: plain lines, no escape sequences, a clean exit at the end
#     of the input;
#   - text from the network cannot inject terminal escapes (a fake server,
#     in Python, sends them; the bytes written to the terminal are checked).
#
# usage: chat_client_tty.sh EXAMPLES_DIR
# Exits 0 on success, 1 on failure, 77 when a tool it needs is missing.
set -u

examples=${1:?usage: chat_client_tty.sh EXAMPLES_DIR}
client="$examples/chat_client"
server="$examples/chat_server"

skip() { echo "SKIP: $*"; exit 77; }
command -v tmux >/dev/null 2>&1 || skip "tmux is not installed (Debian: apt-get install tmux)"
# The relay of the resume check and the hostile server are Python.
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed (Debian: apt-get install python3)"
[ -x "$client" ] && [ -x "$server" ] || skip "chat_client or chat_server not built in $examples"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-tty.XXXXXX")
socket="parley-test-$$"           # our own tmux server, killed at the end
tm() { tmux -u -L "$socket" "$@"; }
server_pid=
fake_pid=
relay_pid=
cleanup() {
    [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
    tm kill-server >/dev/null 2>&1
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    for pane in chat ivan evil; do
        if tm has-session -t "$pane" 2>/dev/null; then
            echo "--- pane $pane:"
            tm capture-pane -p -t "$pane"
        fi
    done
    echo "--- server:"; cat "$tmp/server.log" 2>/dev/null
    exit 1
}

pane() { tm capture-pane -p -t "${2:-chat}"; }
# The chat pane with its history, wrapped rows joined into their lines.
joined() { tm capture-pane -p -J -S - -t chat; }
prompts() { joined | grep -o 'lobby>' | wc -l; }

# Waits up to 10 s for `text` on the pane.
wait_pane() {
    local text=$1 session=${2:-chat}
    for _ in $(seq 100); do
        pane "" "$session" | grep -qF -- "$text" && return 0
        sleep 0.1
    done
    fail "\"$text\" never appeared on the $session pane"
}

# Waits up to 10 s for `text` in the joined pane.
wait_joined() {
    for _ in $(seq 100); do
        joined | grep -qF -- "$1" && return 0
        sleep 0.1
    done
    fail "\"$1\" never appeared on the chat pane (joined)"
}

# Waits up to 10 s for `count` lines holding `text` in the joined pane.
wait_count() {
    local text=$1 count=$2
    for _ in $(seq 100); do
        [ "$(joined | grep -cF -- "$text")" -ge "$count" ] && return 0
        sleep 0.1
    done
    fail "\"$text\" did not appear $count times on the chat pane"
}

# Another client, through pipes, joins as `nick`, says `text` in the lobby
# and leaves.
says() {
    printf '%s\n%s\n' "$1" "$2" | "$client" --port "$port" >/dev/null 2>"$tmp/$1.err" ||
        fail "piped client $1: $(cat "$tmp/$1.err")"
    wait_joined "$1: $2"
    wait_joined "$1 left lobby (quit)"
}

# Waits up to 10 s for a file to exist and not be empty.
wait_file() {
    for _ in $(seq 100); do
        [ -s "$1" ] && return 0
        sleep 0.1
    done
    fail "$1 never appeared"
}

# --- the server ---------------------------------------------------------------------
"$server" --port 0 --line-port 0 --no-web >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$tmp/server.log" && break
    sleep 0.1
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/server.log" | head -n 1)
[ -n "$port" ] || fail "chat_server did not say where it listens"

# --- on a terminal ------------------------------------------------------------------
tm new-session -d -s chat -x 120 -y 30 \
    "stty -a >'$tmp/stty.before'; '$client' --port $port 2>'$tmp/alice.err'; \
     echo \$? >'$tmp/alice.status'; stty -a >'$tmp/stty.after'; sleep 600" ||
    fail "tmux could not start"

wait_pane "请输入昵称"            # the server's prompt, shown by the client
wait_pane "nickname>"
tm send-keys -t chat -l "alice"
tm send-keys -t chat Enter
wait_pane "welcome, alice"
wait_pane "lobby>"   # (capture-pane drops trailing spaces)

tm send-keys -t chat -l "half typed"
wait_pane "lobby> half typed"

# Another client, through pipes: joins, says something, leaves.
printf 'bob\nhello from bob\n' | "$client" --port "$port" >"$tmp/bob.out" 2>"$tmp/bob.err"
bob_status=$?
wait_pane "bob: hello from bob"
wait_pane "bob left lobby (quit)"

# The message was printed above the line being typed, which is intact.
screen=$(pane)
last=$(printf '%s\n' "$screen" | grep -v '^[[:space:]]*$' | tail -n 1)
[ "$last" = "lobby> half typed" ] || fail "the line being typed was garbled: last line is \"$last\""
printf '%s\n' "$screen" | grep -F "bob: hello from bob" | grep -qF "half typed" &&
    fail "the incoming message was mixed with the line being typed"

tm send-keys -t chat -l " and finished"
tm send-keys -t chat Enter
wait_pane "alice: half typed and finished"

# The server restarts: the client reconnects, takes its nickname again and
# carries on.
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
}
start_server() {
    : >"$tmp/server.log"
    "$server" --port "$port" --line-port 0 --no-web >"$tmp/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening on ' "$tmp/server.log" && return 0
        sleep 0.1
    done
    fail "chat_server did not restart on port $port"
}
stop_server
wait_pane "reconnect"
start_server
wait_pane "reconnected to"
for _ in $(seq 100); do
    [ "$(pane | grep -c "welcome, alice")" -ge 2 ] && break
    sleep 0.1
done
[ "$(pane | grep -c "welcome, alice")" -ge 2 ] || fail "no nickname after reconnecting"
tm send-keys -t chat -l "back again"
tm send-keys -t chat Enter
wait_pane "alice: back again"

# --- a network drop: resume ---------------------------------------------------------
# A TCP relay to the server: SIGUSR1 resets every connection through it
# and stops listening; SIGUSR2 listens again on the same port.
cat >"$tmp/relay.py" <<'PY'
import selectors, signal, socket, struct, sys
target = ("127.0.0.1", int(sys.argv[1]))
sel = selectors.DefaultSelector()
peers = {}
def listen(port=0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    sel.register(s, selectors.EVENT_READ, "accept")
    return s
listener = listen()
port = listener.getsockname()[1]
print(port, flush=True)
requests = []
signal.signal(signal.SIGUSR1, lambda *_: requests.append("drop"))
signal.signal(signal.SIGUSR2, lambda *_: requests.append("allow"))
def close(s):
    if s in peers:
        other = peers.pop(s)
        peers.pop(other, None)
        for x in (s, other):
            sel.unregister(x)
            x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
            x.close()
while True:
    for key, _ in sel.select(timeout=0.05):
        if key.data == "accept":
            inbound, _ = key.fileobj.accept()
            outbound = socket.create_connection(target)
            peers[inbound], peers[outbound] = outbound, inbound
            sel.register(inbound, selectors.EVENT_READ, "pipe")
            sel.register(outbound, selectors.EVENT_READ, "pipe")
        elif key.fileobj in peers:
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if data:
                peers[key.fileobj].sendall(data)
            else:
                close(key.fileobj)
    while requests:
        what = requests.pop(0)
        if what == "drop" and listener is not None:
            for s in list(peers):
                close(s)
            sel.unregister(listener)
            listener.close()
            listener = None
        elif what == "allow" and listener is None:
            listener = listen(port)
PY
python3 "$tmp/relay.py" "$port" >"$tmp/relay.port" &
relay_pid=$!
wait_file "$tmp/relay.port"
relay_port=$(cat "$tmp/relay.port")
tm new-session -d -s ivan -x 120 -y 30 "'$client' --port $relay_port --nick ivan; sleep 600"
wait_pane "welcome, ivan" ivan
wait_pane "ivan joined lobby"
says kim "before the drop"
wait_pane "kim: before the drop" ivan
kill -USR1 "$relay_pid"
wait_pane "reconnect" ivan
says lou "missed one"
says max "missed two"
kill -USR2 "$relay_pid"
wait_pane "resumed as ivan: nothing was missed" ivan
for text in "kim: before the drop" "lou: missed one" "max: missed two"; do
    n=$(pane "" ivan | grep -cF -- "$text")
    [ "$n" = 1 ] || fail "ivan's pane shows \"$text\" $n times, not once"
done
pane "" ivan | grep -qF "taken" && fail "ivan's nickname was refused after the drop"
joined | grep -qF "ivan left" && fail "the room saw ivan leave during the drop"
[ "$(joined | grep -cF "ivan joined")" = 1 ] || fail "the room saw ivan join again"
tm send-keys -t ivan -l "QUIT"
tm send-keys -t ivan Enter
wait_joined "ivan left lobby (quit)"
tm kill-session -t ivan
kill "$relay_pid" 2>/dev/null
wait "$relay_pid" 2>/dev/null
relay_pid=

# --- line editing ------------------------------------------------------------------
# Left, then a letter inserted in the middle.
tm send-keys -t chat -l "helo"
tm send-keys -t chat Left
tm send-keys -t chat -l "l"
wait_pane "lobby> hello"
tm send-keys -t chat Enter
wait_pane "alice: hello"
# Home and End.
tm send-keys -t chat -l "world"
tm send-keys -t chat Home
tm send-keys -t chat -l "big "
tm send-keys -t chat End
tm send-keys -t chat -l "!"
wait_pane "lobby> big world!"
tm send-keys -t chat Enter
wait_pane "alice: big world!"
# Up twice: the line before the last one, sent again.
tm send-keys -t chat Up
wait_pane "lobby> big world!"
tm send-keys -t chat Up
wait_pane "lobby> hello"
tm send-keys -t chat Enter
wait_count "alice: hello" 2

# A message arrives with the cursor in the middle of the line: the line and
# the cursor are as they were.
tm send-keys -t chat -l "abcdef"
tm send-keys -t chat Left Left Left
wait_pane "lobby> abcdef"
says erin "while you type"
last=$(pane | grep -v '^[[:space:]]*$' | tail -n 1)
[ "$last" = "lobby> abcdef" ] || fail "a message garbled the line being typed: \"$last\""
tm send-keys -t chat -l "X"
wait_pane "lobby> abcXdef"
tm send-keys -t chat Enter
wait_pane "alice: abcXdef"
[ "$(prompts)" = 1 ] || fail "$(prompts) prompts on the pane after a message"

# A long line (wrapped over two rows at 120 columns), a message while it is
# there, then a narrower and a wider window: one prompt each time, the line
# intact. A letter typed after each resize makes sure the client has drawn
# the line at the new width.
long="the quick brown fox jumps over the lazy dog, $(printf 'and again %.0s' $(seq 9))end"
tm send-keys -t chat -l "$long"
wait_joined "lobby> $long"
says dave "under a long line"
wait_joined "lobby> $long"
[ "$(prompts)" = 1 ] || fail "$(prompts) prompts on the pane after a message under a long line"
resize() {
    tm resize-window -t chat -x "$1"
    # tmux reflows its screen at once but resizes the terminal (and sends
    # SIGWINCH) a little later, at most one size per 250 ms.
    local tty
    tty=$(tm display -p -t chat '#{pane_tty}')
    for _ in $(seq 100); do
        [ "$(stty -F "$tty" size 2>/dev/null)" = "30 $1" ] && return 0
        sleep 0.1
    done
    fail "tmux did not resize the terminal to $1 columns"
}
resize 40
tm send-keys -t chat -l "N"
wait_joined "lobby> ${long}N"
[ "$(prompts)" = 1 ] || fail "$(prompts) prompts on the pane after a narrower window"
resize 120
tm send-keys -t chat -l "W"
wait_joined "lobby> ${long}NW"
[ "$(prompts)" = 1 ] || fail "$(prompts) prompts on the pane after a wider window"
# and what was above the line is still there, once.
for line in "alice: abcXdef" "dave: under a long line" "dave left lobby (quit)"; do
    [ "$(joined | grep -cF -- "$line")" = 1 ] || fail "\"$line\" is not on the pane once"
done
tm send-keys -t chat Enter
wait_joined "alice: ${long}NW"

tm send-keys -t chat -l "QUIT"
tm send-keys -t chat Enter
wait_file "$tmp/alice.status"
wait_file "$tmp/stty.after"
[ "$(cat "$tmp/alice.status")" = 0 ] || fail "QUIT: exit status $(cat "$tmp/alice.status")"
wait_pane "goodbye, alice"
wait_pane "left the chat"
cmp -s "$tmp/stty.before" "$tmp/stty.after" ||
    fail "the terminal's modes changed: $(diff "$tmp/stty.before" "$tmp/stty.after")"

# --- through pipes: plain lines ---------------------------------------------------------
[ "$bob_status" = 0 ] || fail "piped client: exit status $bob_status ($(cat "$tmp/bob.err"))"
if grep -q $'\x1b' "$tmp/bob.out"; then
    fail "piped client printed escape sequences: $(cat -v "$tmp/bob.out")"
fi
for line in "* welcome, bob! type /help for the commands" "[lobby] bob: hello from bob" \
    "* goodbye, bob"; do
    grep -qxF -- "$line" "$tmp/bob.out" || fail "piped client: no line \"$line\" in: $(cat "$tmp/bob.out")"
done
grep -qF "leaving the chat" "$tmp/bob.err" || fail "piped client: no note on standard error"

# --- the server shuts down for good: the client says so and exits ----------------------------
mkfifo "$tmp/carol.in"
"$client" --port "$port" --reconnect-attempts 2 <"$tmp/carol.in" >"$tmp/carol.out" \
    2>"$tmp/carol.err" &
carol_pid=$!
exec 3>"$tmp/carol.in"
echo carol >&3
for _ in $(seq 100); do
    grep -qF "* carol joined lobby" "$tmp/carol.out" && break
    sleep 0.1
done
grep -qF "* carol joined lobby" "$tmp/carol.out" || fail "piped client carol never joined"
stop_server
for _ in $(seq 150); do
    kill -0 "$carol_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$carol_pid" 2>/dev/null; then
    kill "$carol_pid"
    fail "the client did not exit after the server shut down"
fi
wait "$carol_pid"
carol_status=$?
exec 3>&-
[ "$carol_status" = 0 ] || fail "after the server shut down: exit status $carol_status"
grep -qF "the server shut down" "$tmp/carol.err" ||
    fail "no clear message after the server shut down: $(cat "$tmp/carol.err")"

# --- hostile text from the network ----------------------------------------------------------
# A fake server whose events carry escape sequences: clear screen, set
# the window title, a bidirectional override. The real server refuses
# such text; a client must not trust that every server does.
cat >"$tmp/evil.py" <<'PY'
import json, socket, struct, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
def send(event):
    payload = json.dumps(event).encode()
    conn.sendall(struct.pack(">I", len(payload)) + payload)
send({"type": "welcome", "prompt": "nick?\u001b[2J", "protocol": 1, "server": "evil",
      "max_frame_bytes": 65536, "max_message_bytes": 4096, "max_nickname_length": 32})
conn.recv(100)  # the nickname
send({"type": "nick_accepted", "nick": "eve"})
send({"type": "message", "id": 1, "room": "lobby", "from": "mallory\u001b[31m",
      "text": "pwned\u001b]0;title\u0007\u202e!txet\u0085\u009b2J", "time": "2024-05-01T12:00:00.000Z"})
conn.recv(100)
PY
python3 "$tmp/evil.py" >"$tmp/evil.port" &
fake_pid=$!
wait_file "$tmp/evil.port"
evil_port=$(cat "$tmp/evil.port")
# The client starts once pipe-pane records everything written to the pane.
tm new-session -d -s evil -x 120 -y 30 \
    "while [ ! -e '$tmp/evil.raw' ]; do sleep 0.05; done; '$client' --port $evil_port --nick eve; sleep 600"
tm pipe-pane -t evil -o "cat >>'$tmp/evil.raw'"
for _ in $(seq 50); do [ -e "$tmp/evil.raw" ] && break; sleep 0.05; done
: >>"$tmp/evil.raw"
wait_pane "pwned" evil
sleep 0.3
raw="$tmp/evil.raw"
grep -q $'\x1b\\[2J' "$raw" && fail "an escape sequence from the network reached the terminal (clear screen)"
grep -q $'\x1b\\]0;' "$raw" && fail "an escape sequence from the network reached the terminal (title)"
grep -q $'\x1b\\[31mmallory\x1b\\[31m' "$raw" && fail "a nickname injected a colour"
grep -q $'\xe2\x80\xae' "$raw" && fail "a bidirectional override reached the terminal"
grep -q $'\xc2\x85\|\xc2\x9b' "$raw" && fail "a C1 control reached the terminal"
grep -qF $'pwned\xef\xbf\xbd]0;title\xef\xbf\xbd' "$raw" ||
    fail "the hostile message was not shown with its controls replaced by U+FFFD"

if [ -n "${PARLEY_TEST_VERBOSE:-}" ]; then
    echo "--- pane chat:"; pane | grep -v '^[[:space:]]*$'
    for f in bob.out bob.err carol.out carol.err; do echo "--- $f:"; cat "$tmp/$f"; done
    echo "--- pane evil:"; pane "" evil | grep -v '^[[:space:]]*$'
fi
echo "PASS: chat_client on a terminal and in a pipe"
exit 0
