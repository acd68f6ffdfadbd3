package installer

// ServerJoinConfigKeys are the K3s server keys of high availability that
// tpctl writes besides K3sConfigKeys: cluster-init on the first server
// (converted to embedded etcd), server and token on a joining server.
func ServerJoinConfigKeys() []string {
	return []string{"cluster-init", "server", "token", "token-file"}
}
