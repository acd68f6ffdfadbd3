package cluster

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// credential is one client identity of the harness: a URL, the CA and a
// client certificate.
type credential struct {
	server string
	ca     []byte
	kp     KeyPair
}

// restConfig returns a client configuration for the credential.
func (c credential) restConfig() *rest.Config {
	return &rest.Config{
		Host: c.server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.ca,
			CertData: c.kp.CertPEM,
			KeyData:  c.kp.KeyPEM,
		},
		QPS:   200,
		Burst: 400,
	}
}

// writeKubeconfig writes a kubeconfig (0600) with the credential embedded.
func (c credential) writeKubeconfig(path, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["tpctl-test"] = &clientcmdapi.Cluster{Server: c.server, CertificateAuthorityData: c.ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: c.kp.CertPEM, ClientKeyData: c.kp.KeyPEM}
	cfg.Contexts["tpctl-test"] = &clientcmdapi.Context{Cluster: "tpctl-test", AuthInfo: user}
	cfg.CurrentContext = "tpctl-test"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod kubeconfig %s: %w", path, err)
	}
	return nil
}
