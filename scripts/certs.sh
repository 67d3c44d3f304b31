#!/usr/bin/env bash
# Usage: scripts/certs.sh [--help] [--force]
#
# Makes the gateway's TLS files when they do not exist yet (openssl):
#   - a local certificate authority: TLS_CA (ca.crt) and its key next to it (ca.key, 0600), made once;
#   - a server certificate TLS_CERT with its key TLS_KEY (0600), signed by that CA, valid for the host names in
#     CERT_HOSTNAMES and the addresses in CERT_IPS (comma- or space-separated), plus GATEWAY_SERVER_NAME.
# Existing files are kept: bring your own certificate by pointing TLS_CERT/TLS_KEY at it. A server certificate
# whose names no longer match the settings, or that expires within 30 days, is made again (same CA).
# --force makes a new server certificate (the CA is kept). Clients trust TLS_CA (curl --cacert, SSL_CERT_FILE).
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SERVER_DAYS=397 # browsers refuse longer-lived server certificates
CA_DAYS=3650

split_list() { tr ',' ' ' <<<"$1" | xargs -n1 2>/dev/null || true; }

# san_list: the subjectAltName value made from CERT_HOSTNAMES, GATEWAY_SERVER_NAME and CERT_IPS.
san_list() {
	local names=() item
	while read -r item; do
		[[ -n "$item" ]] && names+=("DNS:$item")
	done < <({
		split_list "$CERT_HOSTNAMES"
		split_list "$GATEWAY_SERVER_NAME"
	} | awk '!seen[$0]++')
	while read -r item; do
		[[ -z "$item" ]] && continue
		[[ "$item" =~ ^[0-9.]+$ || "$item" == *:* ]] ||
			die "CERT_IPS: '$item' is not an IP address; put host names in CERT_HOSTNAMES"
		names+=("IP:$item")
	done < <(split_list "$CERT_IPS" | awk '!seen[$0]++')
	local IFS=,
	printf '%s\n' "${names[*]}"
}

make_ca() {
	local ca_crt="$1" ca_key="$2"
	info "making a local certificate authority: $ca_crt"
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca_key" 2>/dev/null)
	chmod 600 "$ca_key"
	openssl req -x509 -new -key "$ca_key" -sha256 -days "$CA_DAYS" -subj "/CN=ftk local CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" -out "$ca_crt" 2>/dev/null
	chmod 644 "$ca_crt"
}

make_server_cert() {
	local crt="$1" key="$2" ca_crt="$3" ca_key="$4" san="$5" ext csr
	info "making the server certificate $crt for $san"
	ext="$(mktemp)"
	csr="$(mktemp)"
	# shellcheck disable=SC2064
	trap "rm -f '$ext' '$csr'" RETURN
	printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth" "subjectAltName=$san" "subjectKeyIdentifier=hash" \
		"authorityKeyIdentifier=keyid:always" >"$ext"
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key.tmp" 2>/dev/null)
	openssl req -new -key "$key.tmp" -subj "/CN=$GATEWAY_SERVER_NAME" -out "$csr" 2>/dev/null
	openssl x509 -req -in "$csr" -CA "$ca_crt" -CAkey "$ca_key" -CAcreateserial -sha256 -days "$SERVER_DAYS" \
		-extfile "$ext" -out "$crt.tmp" 2>/dev/null
	chmod 600 "$key.tmp"
	chmod 644 "$crt.tmp"
	mv -f "$key.tmp" "$key"
	mv -f "$crt.tmp" "$crt"
}

# cert_current CRT SAN: the certificate lives 30 more days and names exactly the wanted SANs.
cert_current() {
	local crt="$1" san="$2" have want
	openssl x509 -in "$crt" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 || return 1
	have="$(openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' ' |
		sed 's/IPAddress:/IP:/g' | tr ',' '\n' | sort | tr '\n' ',')"
	want="$(tr ',' '\n' <<<"$san" | sort | tr '\n' ',')"
	[[ "$have" == "$want" ]]
}

main() {
	local force=0
	case "${1:-}" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	--force) force=1 ;;
	"") ;;
	*) die "unknown option '$1'; see scripts/certs.sh --help" 2 ;;
	esac
	export_settings
	require_cmd openssl || exit 1
	local crt key ca_crt ca_key san
	crt="$(ftk_path "$TLS_CERT")"
	key="$(ftk_path "$TLS_KEY")"
	ca_crt="$(ftk_path "$TLS_CA")"
	ca_key="$(dirname "$ca_crt")/ca.key"
	san="$(san_list)"
	mkdir -p "$(dirname "$crt")" "$(dirname "$key")" "$(dirname "$ca_crt")"

	if [[ -f "$crt" && -f "$key" && ! -f "$ca_key" ]]; then
		ok "using your certificate $crt (no local CA key at $ca_key: nothing to make)"
		return 0
	fi
	if ((force == 0)) && [[ -f "$crt" && -f "$key" ]] && cert_current "$crt" "$san"; then
		ok "TLS certificate $crt is current ($san)"
		return 0
	fi
	if [[ ! -f "$ca_crt" || ! -f "$ca_key" ]]; then
		[[ -f "$ca_crt" ]] && die "$ca_crt exists but its key $ca_key does not; remove $ca_crt or set TLS_CERT/TLS_KEY to your own certificate"
		make_ca "$ca_crt" "$ca_key"
	fi
	make_server_cert "$crt" "$key" "$ca_crt" "$ca_key" "$san"
	openssl verify -CAfile "$ca_crt" "$crt" >/dev/null || die "the new certificate $crt does not verify against $ca_crt; remove both and run again"
	ok "TLS certificate $crt ($san), trusted through $ca_crt"
}

main "$@"
