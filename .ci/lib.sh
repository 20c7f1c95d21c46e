# Shared by the .ci scripts (sourced).

# listening PORT [NETNS]: is a TCP socket listening on PORT (state 0A in /proc/net/tcp),
# in the network namespace NETNS when one is given? It reads without connecting: a
# probe connection would open the console's pty behind ser2net, and ser2net would turn
# the next client away while it closes it.
listening() {
  ${2:+ip netns exec "$2"} python3 - "$1" <<'PY'
import sys
port = int(sys.argv[1])
with open("/proc/net/tcp") as f:
    next(f)
    for line in f:
        local, state = line.split()[1], line.split()[3]
        if int(local.split(":")[1], 16) == port and state == "0A":
            sys.exit(0)
sys.exit(1)
PY
}
