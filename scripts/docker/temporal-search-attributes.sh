#!/bin/sh
# One-shot for docker-compose.yml (temporal-setup service, admin-tools image):
# wait for the namespace, then create Konstruct's custom search attributes
# if they are missing. The native servers get them from temporal-dev.yaml
# (scripts/temporal.sh, scripts/temporal-server.sh).
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
attrs="TenantId AgentId Channel ConversationStatus"

i=0
until temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 180 ]; then
		echo "namespace $ns did not appear on ${TEMPORAL_ADDRESS:-?} within 180s" >&2
		exit 1
	fi
	sleep 1
done

for sa in $attrs; do
	if temporal operator search-attribute list --namespace "$ns" | grep -qw "$sa"; then
		echo "search attribute $sa exists"
	else
		echo "creating search attribute $sa (Keyword)"
		temporal operator search-attribute create --namespace "$ns" --name "$sa" --type Keyword
	fi
done

list="$(temporal operator search-attribute list --namespace "$ns")"
for sa in $attrs; do
	echo "$list" | grep -qw "$sa" || { echo "search attribute $sa is missing" >&2; exit 1; }
done

# The server maps a new attribute once its namespace cache reloads
# (system.forceSearchAttributesCacheRefreshOnRead is off in
# scripts/temporal-server/dynamicconfig.yaml): wait until a query naming them
# all is accepted, so that the app's first SignalWithStart is not refused.
q=""
for sa in $attrs; do q="${q:+$q AND }$sa IS NULL"; done
i=0
until temporal workflow count --namespace "$ns" --query "$q" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 60 ]; then
		echo "search attributes are not usable in namespace $ns after 60s" >&2
		exit 1
	fi
	sleep 1
done
echo "search attributes ready in namespace $ns: $attrs"
