package launcher

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tpctl/tpctl/test/cluster"
)

// pki is the node's certificates: a CA and service-account key kept in
// <data-dir>/server/tls across restarts (pods' tokens and kubeconfigs stay
// valid), and leaf certificates issued afresh at every start.
type pki struct {
	dir          string
	ca           *cluster.CA
	saKey, saPub string
}

// loadOrCreatePKI reuses the CA and service-account keys of an earlier
// start, or makes them.
func loadOrCreatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	p := &pki{dir: dir}
	ca, err := loadCA(dir)
	if err != nil {
		return nil, err
	}
	if ca == nil {
		if ca, err = cluster.NewCA(dir); err != nil {
			return nil, err
		}
		if _, err := ca.WriteKey(dir); err != nil {
			return nil, err
		}
	}
	p.ca = ca
	p.saKey, p.saPub = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if !exists(p.saKey) || !exists(p.saPub) {
		if p.saKey, p.saPub, err = cluster.WriteServiceAccountKeys(dir); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// loadCA reads ca.crt and ca.key; nil when they are absent or the
// certificate expires within the hour (a new CA is made then).
func loadCA(dir string) (*cluster.CA, error) {
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	certPEM, err := os.ReadFile(certFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", keyFile, err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s or %s is not PEM", certFile, keyFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", certFile, err)
	}
	if time.Until(cert.NotAfter) < time.Hour {
		return nil, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s holds no signing key", keyFile)
	}
	return &cluster.CA{Cert: cert, Key: signer, CertPEM: certPEM, CertFile: certFile}, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// issue signs a certificate into the TLS directory.
func (p *pki) issue(name string, spec cluster.CertSpec) (cluster.KeyPair, error) {
	return p.ca.Issue(p.dir, name, spec)
}

// apiserverSANs are the serving certificate's addresses and names: loopback,
// the node address, the kubernetes Service address, the TLS SANs asked for.
func apiserverSANs(c Config, nodeIP string) ([]net.IP, []string) {
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(nodeIP), net.IP(c.KubernetesServiceIP().AsSlice())}
	names := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", c.NodeName}
	for _, s := range c.TLSSANs {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, s)
		}
	}
	return ips, names
}

// writeKubeconfig writes a kubeconfig with the client certificate embedded,
// shaped like K3s's (cluster, user and context "default").
func writeKubeconfig(path, server string, ca []byte, kp cluster.KeyPair, mode os.FileMode) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["default"] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	cfg.CurrentContext = "default"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encode kubeconfig %s: %w", path, err)
	}
	return writeFileAtomic(path, data, mode)
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place with mode.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make dir for %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
