# Shared by scripts/demo and scripts/test: make sure this machine has what
# moat needs, installing it when it does not. Sourced, not run.

GO_VERSION=1.26.8

die() { echo "error: $*" >&2; exit 1; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

need_root() {
	[ "$(id -u)" = 0 ] || die "run as root: moat runs containers (runc, overlayfs, cgroups) and namespaces"
}

# install_packages CMD:PKG... installs the Debian packages whose commands
# are missing. With everything present it touches nothing (and needs no
# network).
install_packages() {
	local missing=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install them by hand"
	step "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ensure_go puts a Go toolchain on PATH: the one installed, /usr/local/go,
# or Go itself fetched through the Go module proxy (golang.org/toolchain).
# Modules come through the proxy too.
ensure_go() {
	export PATH="$PATH:/usr/local/go/bin:/usr/local/go-$GO_VERSION/bin"
	export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
	if command -v go >/dev/null 2>&1; then
		return 0
	fi
	local arch
	case "$(uname -m)" in
		x86_64) arch=amd64 ;;
		aarch64) arch=arm64 ;;
		*) die "no Go toolchain for $(uname -m)" ;;
	esac
	install_packages curl:curl unzip:unzip ca-certificates:ca-certificates
	local proxy="${GOPROXY:-https://proxy.golang.org}"
	proxy="${proxy%%,*}"
	local mod="golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$arch"
	step "fetching Go $GO_VERSION from $proxy"
	local tmp
	tmp=$(mktemp -d)
	curl -fsSL "$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip" -o "$tmp/go.zip"
	unzip -q "$tmp/go.zip" -d "$tmp"
	rm -rf "/usr/local/go-$GO_VERSION"
	mv "$tmp/$mod" "/usr/local/go-$GO_VERSION"
	chmod +x /usr/local/go-$GO_VERSION/bin/* /usr/local/go-$GO_VERSION/pkg/tool/*/* 2>/dev/null || true
	rm -rf "$tmp"
	command -v go >/dev/null || die "Go was fetched but does not run"
}

# moat_packages: what running and testing moat needs on a Debian machine.
moat_packages() {
	install_packages runc:runc sshd:openssh-server ssh:openssh-client ip:iproute2 \
		curl:curl ps:procps ss:iproute2 setpriv:util-linux update-ca-certificates:ca-certificates
}

build_moat() {
	step "building moat"
	mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -o bin/moat ./cmd/moat
}
