#!/usr/bin/env bash
# After `make demo`: what the client gets through the VIP, and who is MASTER.
set -euo pipefail
DOCKER=${DOCKER:-/usr/bin/docker}
VIP=${VIP:-1.1.1.111}
echo "--- curl http://$VIP/ from the client (1.1.1.10), 6 requests:"
for _ in 1 2 3 4 5 6; do
  "$DOCKER" exec client curl -s --max-time 3 "http://$VIP/" || echo "(request failed)"
done
echo "--- VRRP state:"
for d in lb1 lb2; do
  state=$("$DOCKER" exec "$d" sh -c 'cat /run/lbha/vrrp/*.state 2>/dev/null | head -n 1' || true)
  holds=$("$DOCKER" exec "$d" ip -o -4 addr show to "$VIP/32" | awk '{print $2}' || true)
  printf '%-4s %-7s %s\n' "$d" "${state:-unknown}" "${holds:+holds $VIP on $holds}"
done
echo "--- the topology stays up; remove it with: make demo-down"
