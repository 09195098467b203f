/**
 * The words BIRD refuses as a protocol name: its keywords (lower case; BIRD's keywords are case-sensitive, so
 * `BGP` is a name), the attribute and other names it predefines (`bgp_med`, `krt_metric`, ...) and its enum
 * constants (`RTS_STATIC`, `NET_IP4`, ...). gorb writes `protocol static <name>` and `<name>6` into its include
 * file and sends `show route protocol <name>`: a reserved word there is a syntax error BIRD reports only when it
 * reads the file, so --bgp-protocol refuses one at start.
 *
 * Derived with BIRD 2.0.12 (Debian bookworm's bird2), not guessed: every identifier in the bird binary
 * (`strings | grep -oE '[A-Za-z_][A-Za-z0-9_]*'`, as is and in lower case) was put in a config of
 * `router id 1.1.1.1; protocol static <word> { ipv4; }` and parsed with `bird -p -c`; these are the ones it
 * refused. (An identifier that is a long run of hex digits, which BIRD reads as a byte string, is refused too and
 * not listed.) Re-run the same against a newer BIRD to update the list.
 */
export const BIRD_RESERVED_WORDS = [
  "AF_IPV4", "AF_IPV6", "NET_FLOW4", "NET_FLOW6", "NET_IP4", "NET_IP6", "NET_IP6_SADR", "NET_ROA4", "NET_ROA6",
  "NET_VPN4", "NET_VPN6", "ORIGIN_EGP", "ORIGIN_IGP", "ORIGIN_INCOMPLETE", "RA_PREF_HIGH", "RA_PREF_LOW",
  "RA_PREF_MEDIUM", "ROA_INVALID", "ROA_UNKNOWN", "ROA_VALID", "RTD_BLACKHOLE", "RTD_PROHIBIT", "RTD_UNICAST",
  "RTD_UNREACHABLE", "RTS_BABEL", "RTS_BGP", "RTS_DEVICE", "RTS_INHERIT", "RTS_OSPF", "RTS_OSPF_EXT1", "RTS_OSPF_EXT2",
  "RTS_OSPF_IA", "RTS_PIPE", "RTS_REDIRECT", "RTS_RIP", "RTS_STATIC", "RTS_STATIC_DEVICE", "SCOPE_HOST", "SCOPE_LINK",
  "SCOPE_ORGANIZATION", "SCOPE_SITE", "SCOPE_UNDEFINED", "SCOPE_UNIVERSE", "accept", "action", "add", "address",
  "administrative", "advertise", "after", "aigp", "algorithm", "all", "allow", "always", "area", "as", "as4", "asn",
  "attribute", "attributes", "auth", "authentication", "autonomous", "aware", "babel", "babel_metric", "base", "bcast",
  "bfd", "bgp", "bgp_aggregator", "bgp_aigp", "bgp_atomic_aggr", "bgp_cluster_list", "bgp_community",
  "bgp_ext_community", "bgp_large_community", "bgp_local_pref", "bgp_med", "bgp_next_hop", "bgp_origin",
  "bgp_originator_id", "bgp_otc", "bgp_path", "bgpmask", "bgppath", "bind", "bird", "blackhole", "blake2b256",
  "blake2b512", "blake2s128", "blake2s256", "block", "bool", "broadcast", "bt_assert", "bt_check_assign",
  "bt_test_same", "bt_test_suite", "buffer", "bug", "by", "capabilities", "case", "cease", "change", "channels",
  "check", "circuit", "class", "client", "clist", "cluster", "code", "collision", "commands", "communities",
  "confederation", "config", "configuration", "configure", "confirm", "connect", "connection", "contains", "cost",
  "cost2", "count", "cryptographic", "current", "data", "data1", "data2", "dead", "debug", "deconfigured", "default",
  "define", "defined", "delay", "delete", "demand", "description", "dest", "deterministic", "dev", "device", "digits",
  "direct", "disable", "disabled", "dnssl", "do", "domain", "dont_fragment", "down", "dport", "drop", "dscp", "dst",
  "dump", "dynamic", "ebgp", "ec", "echo", "eclist", "ecmp", "eligible", "else", "empty", "enable", "enforce",
  "entries", "error", "events", "exit", "exp", "expire", "export", "exported", "extended", "external", "false",
  "fatal", "filename", "filter", "filtered", "filters", "first", "first_fragment", "flags", "flow4", "flow6", "flush",
  "for", "forget", "fragment", "free", "from", "function", "garbage", "gateway", "gc", "generate", "generic", "global",
  "graceful", "gw", "gw_mpls", "header", "hello", "help", "hidden", "high", "hit", "hmac", "hold", "hop", "horizon",
  "hostname", "ibgp", "icmp", "id", "idle", "if", "ifindex", "ifname", "ignore", "igp", "igp_metric", "import", "in",
  "infinity", "info", "instance", "int", "interface", "interfaces", "internal", "interpret", "interval", "ip", "ipv4",
  "ipv4_mc", "ipv4_mpls", "ipv6", "ipv6_mc", "ipv6_mpls", "ipv6_sadr", "is_fragment", "is_v4", "is_v6", "iso", "keep",
  "keepalive", "kernel", "key", "keyed", "krt_advmss", "krt_cwnd", "krt_feature_allfrag", "krt_feature_ecn",
  "krt_hoplimit", "krt_initcwnd", "krt_initrwnd", "krt_lock_advmss", "krt_lock_cwnd", "krt_lock_hoplimit",
  "krt_lock_mtu", "krt_lock_reordering", "krt_lock_rto_min", "krt_lock_rtt", "krt_lock_rttvar", "krt_lock_sstresh",
  "krt_lock_window", "krt_metric", "krt_mtu", "krt_prefsrc", "krt_quickack", "krt_realm", "krt_reordering",
  "krt_rto_min", "krt_rtt", "krt_rttvar", "krt_scope", "krt_source", "krt_sstresh", "krt_window", "label", "large",
  "last", "last_fragment", "last_nonaggregated", "latency", "lc", "lclist", "learn", "len", "length", "lifetime",
  "limit", "linger", "link", "lived", "lladdr", "local", "log", "long", "lsa", "lsadb", "lsid", "mac", "managed",
  "mandatory", "mask", "master4", "master6", "match", "max", "maxlen", "md5", "med", "medium", "member", "memory",
  "merge", "messages", "meticulous", "metric", "min", "missing", "mode", "mpls", "mrt", "mrtdump", "ms", "mtu", "mult",
  "multicast", "multihop", "multiplier", "name", "nbma", "neighbor", "neighbors", "net", "netlink", "netmask",
  "networks", "next", "ng", "no", "noexport", "nonbroadcast", "none", "normal", "ns", "nssa", "of", "off", "offset",
  "older", "on", "onlink", "only", "originate", "ospf", "ospf_metric1", "ospf_metric2", "ospf_router_id", "ospf_tag",
  "other", "out", "packets", "pair", "passive", "password", "passwords", "path", "paths", "pe", "perf", "period",
  "permissive", "persist", "pipe", "plaintext", "pointomultipoint", "pointopoint", "poison", "poll", "port",
  "preexport", "prefer", "preference", "preferred", "prefix", "prepend", "pri", "primary", "print", "printn",
  "priority", "private", "prohibit", "propagate", "proto", "protocol", "protocols", "ptmp", "ptp", "public", "quad",
  "quit", "ra", "ra_lifetime", "ra_preference", "radv", "randomize", "range", "rd", "rdnss", "reachable", "real",
  "receive", "recursive", "refresh", "reject", "rejected", "reload", "remote", "repeat", "require", "reset",
  "resources", "restart", "restrict", "retrans", "retransmit", "retry", "return", "reverse", "rfc1583compat",
  "rfc5838", "rip", "rip_metric", "rip_tag", "ro", "roa4", "roa6", "roa_check", "roles", "route", "router", "routes",
  "rpki", "rr", "rs", "rt", "rx", "rxcost", "s", "sadr", "scan", "scope", "sec", "secondary", "security", "self",
  "sensitive", "sessions", "set", "setkey", "sets", "settle", "sha1", "sha256", "sha384", "sha512", "short", "show",
  "shutdown", "simple", "skip", "sockets", "soft", "solicited", "sorted", "source", "split", "src", "ssh", "stability",
  "stale", "start", "startup", "state", "states", "static", "stats", "status", "stderr", "strict", "string", "stub",
  "stubnet", "summary", "suppression", "symbols", "syslog", "table", "tag", "tcp", "template", "then", "threshold",
  "tick", "time", "timeformat", "timeout", "timer", "to", "topology", "trace", "translator", "transmit", "transport",
  "trie", "trigger", "true", "ttl", "tx", "type", "undo", "unicast", "unknown", "unreachable", "unset", "update", "us",
  "user", "v2", "v3", "valid", "validate", "version", "via", "virtual", "vpn", "vpn4", "vpn4_mc", "vpn4_mpls", "vpn6",
  "vpn6_mc", "vpn6_mpls", "vrf", "wait", "warn", "warning", "watchdog", "weight", "where", "wired", "wireless", "yes",
  "zero",
] as const;

const reserved: ReadonlySet<string> = new Set(BIRD_RESERVED_WORDS);

/** True when BIRD refuses `name` as a protocol name (a keyword or a predefined name; case-sensitive, as BIRD is). */
export function isBirdReservedWord(name: string): boolean {
  return reserved.has(name);
}
