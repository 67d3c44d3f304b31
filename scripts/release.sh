#!/usr/bin/env bash
# Usage: scripts/release.sh [--help] list | promote RUN_ID | rollback | settle
#
# Releases through the compose stack, run on the compose host from the project folder (where `docker compose`
# finds compose.yaml and .env; COMPOSE_PROJECT_NAME and COMPOSE_FILE as for any compose command). Needs
# SERVE_MODEL_PATH=release in .env: the `serve` service then runs the release the pointer names
# (RUNS_DIR/release/release.json) and the gateway proxies to `serve`. Natively: `ftk release` (docs/release.md).
#   list            the merged models (models/merged/<RUN_ID>), current and previous (`ftk release list`)
#   promote RUN_ID  gate then switch, with no request lost:
#                   1. `ftk release check`: release mode, not the current release, the folder's preflight
#                   2. a candidate container: serve's image, mounts, GPUs and network, SERVE_MODEL_PATH the
#                      merged folder (`docker compose run -d --no-deps --name <project>-release-<RUN_ID>-<time>
#                      -l ftk.release=candidate serve`), ready on /health within RELEASE_READY_TIMEOUT
#                   3. `ftk release gate`: ftk smoke against it (and ftk eval against the current release when
#                      RELEASE_EVAL=true); any failure removes the candidate, the current release keeps serving
#                   4. the switch: the pointer names the candidate (`ftk release record`), gateway-config renders
#                      the gateway again and nginx reloads (scripts/gateway.sh --reload-rendered); if nginx does
#                      not reload, the pointer goes back (`ftk release undo`) and the candidate goes; else the
#                      candidate gets a restart policy (a reboot before settle brings it back)
#                   5. the old `serve` drains (`ftk release drain`), is recreated on the new release, passes ftk
#                      smoke; the pointer and the gateway move back to `serve`; the candidate drains and goes
#   rollback        the same with the previous release (`ftk release previous`)
#   settle          step 5 alone: when a promote stopped after the switch (serve did not come back), move the
#                   release from its candidate container back to `serve` once serve is fixed
#
# A promote runs two vLLM servers at once (the old release and the candidate): on one GPU, set
# GPU_MEMORY_UTILIZATION so that two fit (e.g. 0.45), or give serve more GPUs than one server needs.
# Leftover candidates (label ftk.release=candidate) the pointer does not name are removed first.
# Settings come from the toolkit container (`docker compose run --rm -T ftk env export`): VLLM_PORT,
# RELEASE_READY_TIMEOUT; RELEASE_DRAIN_TIMEOUT and RELEASE_EVAL act in the `ftk release` steps.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# phase MESSAGE: a step line with the seconds since the start (a promote's time goes to vLLM starts).
phase() { step "[${SECONDS}s] $*"; }

# compose ARGS: docker compose in the project folder.
compose() { (cd "$FTK_HOME" && docker compose "$@"); }

# ftk_release STEP ARGS: a step of `ftk release` in the toolkit container (the checks and the pointer live there).
ftk_release() { compose run --rm -T ftk release "$@"; }

# settings: the values this script needs, from the toolkit container's validated settings; the project name.
settings() {
	local exports
	require_cmd docker "install Docker with Compose v2 (docs/gpu-host.md)" || exit 1
	exports="$(compose run --rm -T ftk env export)" ||
		die "could not read the settings through the toolkit container (above); docker compose run --rm ftk env check lists problems"
	unset VLLM_PORT RELEASE_READY_TIMEOUT
	eval "$(grep -E '^export (VLLM_PORT|RELEASE_READY_TIMEOUT)=' <<<"$exports")"
	[[ -v VLLM_PORT && -v RELEASE_READY_TIMEOUT ]] || die "ftk env export gave no VLLM_PORT or RELEASE_READY_TIMEOUT"
	PROJECT="$(compose config | sed -n 's/^name: //p')"
	[[ -n "$PROJECT" ]] || die "docker compose config names no project; run this from the project folder"
}

# serve_containers: the ids of the `serve` service's own containers (`compose ps` lists run containers too).
serve_containers() {
	docker ps -q --filter "label=com.docker.compose.project=$PROJECT" \
		--filter label=com.docker.compose.service=serve --filter label=com.docker.compose.oneoff=False
}

candidates() {
	docker ps -a --format '{{.Names}}' --filter "label=com.docker.compose.project=$PROJECT" \
		--filter label=ftk.release=candidate
}

# current: "RUN_ID<TAB>UPSTREAM" of the pointer, empty when none.
current() { ftk_release current; }

# remove_candidate NAME: stop (vLLM finishes what it holds within 30 s) and remove the container.
remove_candidate() {
	info "removing candidate container $1"
	docker stop -t 30 "$1" >/dev/null 2>&1 || true
	docker rm -f "$1" >/dev/null 2>&1 || true
}

# cleanup HOST: candidates of earlier runs (a killed promote) except HOST, the one the pointer names, which
# serves the release; status 1 when that one exists (the release is not on serve: settle first).
cleanup() {
	local name host="$1" rc=0
	while read -r name; do
		[[ -z "$name" ]] && continue
		if [[ "$name" == "$host" ]]; then
			rc=1
			continue
		fi
		info "leftover candidate $name (not named by the release pointer)"
		remove_candidate "$name"
	done < <(candidates)
	return "$rc"
}

# probe CONTAINER: run the container's own healthcheck command (compose.yaml's, kept by the container) now,
# instead of waiting for the healthcheck's interval.
probe() {
	local out
	local -a test
	out="$(docker inspect -f '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' "$1" 2>/dev/null)" || return 1
	mapfile -t test <<<"$out"
	case "${test[0]:-}" in
	CMD) docker exec "$1" "${test[@]:1}" >/dev/null 2>&1 ;;
	CMD-SHELL) docker exec "$1" sh -c "${test[1]}" >/dev/null 2>&1 ;;
	*) die "container $1 has no healthcheck command (compose.yaml's serve healthcheck)" ;;
	esac
}

# not_ready CONTAINER WHY: the tail of the container's log, then WHY as the error; status 1.
not_ready() {
	docker logs --tail 40 "$1" 2>&1 | sed 's/^/  | /' >&2 || true
	log error "$1 $2; its log's tail is above"
	return 1
}

# wait_ready CONTAINER: its healthcheck command passes while it runs, at most RELEASE_READY_TIMEOUT seconds; on
# exit or timeout the tail of its log, status 1.
wait_ready() {
	local c="$1" state deadline=$((SECONDS + RELEASE_READY_TIMEOUT))
	info "waiting for $c to pass its healthcheck (at most RELEASE_READY_TIMEOUT=${RELEASE_READY_TIMEOUT}s)"
	while ((SECONDS < deadline)); do
		state="$(docker inspect -f '{{.State.Status}}' "$c" 2>/dev/null)" || state=gone
		if [[ "$state" != running && "$state" != created && "$state" != restarting ]]; then
			not_ready "$c" "stopped ($state) before it was ready"
			return
		fi
		if probe "$c"; then
			ok "$c is ready (${SECONDS}s)"
			return 0
		fi
		sleep 2
	done
	not_ready "$c" "did not pass its healthcheck within RELEASE_READY_TIMEOUT=${RELEASE_READY_TIMEOUT}s"
}

# reload_gateway: render the gateway from the pointer (gateway-config) and reload nginx, waiting until its
# workers run the new configuration. No gateway running: nothing to reload (it renders the pointer at start).
reload_gateway() {
	local out
	if [[ -z "$(compose ps -q --status running gateway)" ]]; then
		warn "no gateway runs: it sends requests to the release's server once started (--profile serve up -d)"
		return 0
	fi
	out="$(compose run --rm -T gateway-config 2>&1)" || {
		printf '%s\n' "$out" >&2
		return 1
	}
	compose exec -T gateway /app/scripts/gateway.sh --reload-rendered /app/runs/gateway
}

# settle RUN_ID CANDIDATE: serve recreated on RUN_ID (the pointer's release), checked, then the pointer and the
# gateway back on serve; the candidate drains and goes. Any failure leaves the candidate serving.
settle() {
	local run_id="$1" candidate="$2" c n fix
	fix="the candidate $candidate keeps serving $run_id (the pointer names it); fix serve (docker compose logs serve), then run: scripts/release.sh settle"
	n="$(serve_containers | wc -l)"
	((n > 0)) || n=1
	phase "serve: recreated on $run_id ($n replica(s)), checked, then the gateway back on serve"
	compose --profile serve up -d --no-deps --force-recreate --scale "serve=$n" serve || die "docker compose up serve failed; $fix"
	for c in $(serve_containers); do
		wait_ready "$c" || die "serve did not become ready on $run_id; $fix"
	done
	ftk_release gate "$run_id" --url "http://serve:$VLLM_PORT/v1" --smoke-only ||
		die "serve on $run_id failed ftk smoke (above); $fix"
	ftk_release repoint "$run_id" --upstream "serve:$VLLM_PORT" || die "could not move the pointer back to serve; $fix"
	reload_gateway || die "the gateway did not reload (above); the pointer names serve again; fix it, then: docker compose run --rm gateway-config && docker compose restart gateway"
	ftk_release drain --upstream "$candidate:$VLLM_PORT"
	remove_candidate "$candidate"
	ok "[${SECONDS}s] release $run_id is served by serve behind the gateway"
}

# undo_switch RUN_ID CANDIDATE: the gateway did not reload, so nginx still runs the old configuration: the
# pointer goes back to the release before the switch (`ftk release undo`), the gateway renders from it again (so a
# gateway restart finds the old upstream), and the candidate goes.
undo_switch() {
	local run_id="$1" candidate="$2"
	ftk_release undo "$run_id" --upstream "$candidate:$VLLM_PORT" ||
		die "the gateway did not reload, and the pointer could not be put back (above): $candidate keeps serving $run_id; fix the gateway, then: scripts/release.sh settle"
	compose run --rm -T gateway-config >/dev/null 2>&1 ||
		warn "gateway-config could not render the old release again; run: docker compose run --rm gateway-config"
	remove_candidate "$candidate"
	die "the gateway did not reload (above); the pointer is back on the release before, which keeps serving: fix the reload (docker compose logs gateway), then promote again"
}

# promote RUN_ID ACTION: the gate in a candidate container, the switch to it, then settle.
promote() {
	local run_id="$1" action="$2" out folder candidate
	phase "$action $run_id: check, candidate container, gate, switch, drain the old serve, serve on $run_id"
	out="$(current)" || die "could not read the release pointer (above)"
	out="$(cut -f2 <<<"$out")"
	cleanup "${out%:*}" || die "the release runs on candidate ${out%:*}, not serve (a promote stopped after its switch): run scripts/release.sh settle first"
	out="$(ftk_release check "$run_id")" || die "$run_id refused (above); nothing changed"
	folder="${out##*$'\n'}"
	candidate="$PROJECT-release-$run_id-$(date +%s)"
	info "starting candidate $candidate: serve's image with SERVE_MODEL_PATH=$folder"
	compose run -d --no-deps --name "$candidate" -l ftk.release=candidate -e "SERVE_MODEL_PATH=$folder" serve >/dev/null ||
		die "docker compose run of the candidate failed (above); nothing changed"
	if ! wait_ready "$candidate"; then
		remove_candidate "$candidate"
		die "the candidate $run_id did not start; the current release keeps serving"
	fi
	if ! ftk_release gate "$run_id" --url "http://$candidate:$VLLM_PORT/v1"; then
		remove_candidate "$candidate"
		die "the gate refused $run_id (above); the current release keeps serving"
	fi
	phase "switch: the pointer and the gateway to $candidate"
	ftk_release record "$run_id" --upstream "$candidate:$VLLM_PORT" --action "$action" ||
		{
			remove_candidate "$candidate"
			die "could not write the release pointer (above); the current release keeps serving"
		}
	reload_gateway || undo_switch "$run_id" "$candidate"
	# from here the candidate serves the release: it comes back after a reboot until settle removes it
	docker update --restart unless-stopped "$candidate" >/dev/null ||
		warn "could not set a restart policy on $candidate; after a reboot before settle, promote again"
	phase "drain: the old release on serve finishes its requests"
	ftk_release drain --upstream "serve:$VLLM_PORT"
	settle "$run_id" "$candidate"
}

# settle_command: the pointer's candidate, if the release runs on one, back onto serve.
settle_command() {
	local run_id upstream
	IFS=$'\t' read -r run_id upstream < <(current) || true
	[[ -n "${run_id:-}" ]] || die "no release promoted yet: scripts/release.sh promote RUN_ID"
	if [[ "$upstream" == "serve:$VLLM_PORT" ]]; then
		ok "release $run_id already runs on serve; nothing to settle"
		return 0
	fi
	candidates | grep -qxF "${upstream%:*}" ||
		die "the pointer names $upstream, which is no candidate container of project $PROJECT; promote again"
	settle "$run_id" "${upstream%:*}"
}

main() {
	local cmd="${1:-}"
	case "$cmd" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	list)
		(($# == 1)) || die "list takes no argument; see scripts/release.sh --help" 2
		# the table as wide as this terminal (the container has none)
		compose run --rm -T -e "COLUMNS=${COLUMNS:-$(tput cols 2>/dev/null || echo 120)}" ftk release list
		return
		;;
	promote)
		(($# == 2)) || die "promote needs one RUN_ID (a folder of models/merged): scripts/release.sh promote RUN_ID" 2
		;;
	rollback | settle)
		(($# == 1)) || die "$cmd takes no argument; see scripts/release.sh --help" 2
		;;
	"") die "no command; use list, promote RUN_ID, rollback or settle (scripts/release.sh --help)" 2 ;;
	*) die "unknown command '$cmd'; use list, promote RUN_ID, rollback or settle (scripts/release.sh --help)" 2 ;;
	esac
	settings
	case "$cmd" in
	promote) promote "$2" promote ;;
	rollback)
		local run_id
		run_id="$(ftk_release previous)" || die "nothing to roll back to (above)"
		promote "${run_id##*$'\n'}" rollback
		;;
	settle) settle_command ;;
	esac
}

main "$@"
