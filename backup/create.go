package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tpctl/tpctl/installer"
)

// Cluster reads what a restore must bring back and tells when the node is
// up. The production one talks to the node's API server (NewKubeCluster).
type Cluster interface {
	// Inventory lists every CoreInstance and Pipeline. With a non-zero
	// since, a pipeline counts as Ready only when one of its pods became
	// Ready at or after since (a restored datastore still holds the Ready
	// status of the time of the backup).
	Inventory(ctx context.Context, since time.Time) (Inventory, error)
	// NodeReady returns nil once the API answers and every node is Ready
	// (with a non-zero since: and its kubelet reported so at or after
	// since), else what is missing.
	NodeReady(ctx context.Context, since time.Time) error
}

// Options for Create.
type Options struct {
	// Root is the host's root directory ("/" in production).
	Root string
	// Output is the archive to write; "" writes <Dir>/<generated name>.
	Output string
	// Dir is where archives are kept (DefaultDir when "").
	Dir string
	// Reason is recorded in the manifest and the generated name ("manual"
	// when "").
	Reason string
	// TpctlVersion is the running tpctl's version.
	TpctlVersion string
	// Cluster, when set, records the inventory (a failure to read it is
	// recorded, not fatal: a snapshot of a node whose API is down is still
	// worth keeping).
	Cluster Cluster
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (o Options) host(p string) string { return filepath.Join(o.Root, p) }

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

// staged is one part read for the archive: small files in memory, the
// database copy in a temporary file.
type staged struct {
	part Part
	data []byte
	file string
}

// Create writes a backup archive and returns its manifest and path.
func Create(ctx context.Context, o Options) (Manifest, string, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	st, err := installer.LoadState(o.host(installer.StatePath), time.Now)
	if err != nil {
		return Manifest{}, "", fmt.Errorf("read the install state: %w", err)
	}
	state := st.Get()
	if err := refuseAgent(state); err != nil {
		return Manifest{}, "", err
	}
	if !state.Completed || state.Config.DataDir == "" {
		return Manifest{}, "", fmt.Errorf("no completed install is recorded in %s: nothing to back up", installer.StatePath)
	}
	now := o.now()
	reason := o.Reason
	if reason == "" {
		reason = "manual"
	}
	m := Manifest{
		Format: FormatVersion, TpctlVersion: o.TpctlVersion, K3sVersion: state.K3s.Version,
		CreatedAt: now, Reason: reason, DataDir: state.Config.DataDir, NodeName: state.Config.NodeName,
	}
	if o.Cluster != nil {
		inv, err := o.Cluster.Inventory(ctx, time.Time{})
		if err != nil {
			m.InventoryError = err.Error()
		} else {
			m.Inventory = &inv
		}
	}
	tmp, err := os.MkdirTemp(o.host(installer.StateDir), ".backup-")
	if err != nil {
		return Manifest{}, "", fmt.Errorf("make a staging directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	server := filepath.Join(m.DataDir, "server")
	var parts []staged
	dbCopy := filepath.Join(tmp, "state.db")
	if installer.EtcdInitialized(o.host("/"), m.DataDir) {
		// K3s moved the SQLite datastore into embedded etcd (a server
		// converted for high availability); state.db is gone or stale.
		return Manifest{}, "", fmt.Errorf("this server's datastore is K3s's embedded etcd (%s), converted for high availability: tpctl backup copies kine's SQLite datastore only and cannot copy etcd yet; nothing was changed", filepath.Join(server, "db", "etcd"))
	}
	m.Datastore, err = copyDatabase(ctx, o.host(filepath.Join(server, "db", "state.db")), dbCopy)
	if err != nil {
		return Manifest{}, "", err
	}
	p, err := stageFile(DBPart, filepath.Join(server, "db", "state.db"), dbCopy)
	if err != nil {
		return Manifest{}, "", err
	}
	parts = append(parts, p)
	p, err = stageMemory(TokenPart, filepath.Join(server, "token"), o.host(filepath.Join(server, "token")))
	if err != nil {
		return Manifest{}, "", fmt.Errorf("the K3s server token: %w", err)
	}
	parts = append(parts, p)
	for _, d := range []struct{ prefix, dir string }{
		{TLSPrefix, filepath.Join(server, "tls")},
		{CredPrefix, filepath.Join(server, "cred")},
	} {
		ps, err := stageTree(d.prefix, d.dir, o.host(d.dir))
		if err != nil {
			return Manifest{}, "", err
		}
		parts = append(parts, ps...)
	}
	p, err = stageMemory(StatePart, installer.StatePath, o.host(installer.StatePath))
	if err != nil {
		return Manifest{}, "", err
	}
	parts = append(parts, p)
	for _, f := range []string{installer.K3sConfigPath, installer.RegistriesPath, NodePasswordPath} {
		p, err := stageMemory(strings.TrimPrefix(f, "/"), f, o.host(f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Manifest{}, "", err
		}
		parts = append(parts, p)
	}
	for _, p := range parts {
		m.Parts = append(m.Parts, p.part)
	}
	if err := m.validate(); err != nil {
		return Manifest{}, "", err
	}

	out := o.Output
	if out == "" {
		dir := o.Dir
		if dir == "" {
			dir = DefaultDir
		}
		dir = o.host(dir)
		if err := ensurePrivateDir(dir); err != nil {
			return Manifest{}, "", err
		}
		out = filepath.Join(dir, ArchiveName(now, reason))
	}
	if err := writeArchive(out, m, parts); err != nil {
		return Manifest{}, "", err
	}
	return m, out, nil
}

// ArchiveName is the generated file name of an archive.
func ArchiveName(t time.Time, reason string) string {
	name := "tpctl-backup-" + t.UTC().Format("20060102T150405Z")
	if reason != "" && reason != "manual" {
		name += "-" + reason
	}
	return name + ".tar.gz"
}

// ensurePrivateDir makes dir 0700 (and makes an existing one 0700).
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// stageMemory reads a small host file into memory.
func stageMemory(name, source, hostPath string) (staged, error) {
	fi, err := os.Lstat(hostPath)
	if err != nil {
		return staged{}, fmt.Errorf("read %s: %w", source, err)
	}
	if !fi.Mode().IsRegular() {
		return staged{}, fmt.Errorf("%s is not a regular file", source)
	}
	b, err := os.ReadFile(hostPath)
	if err != nil {
		return staged{}, fmt.Errorf("read %s: %w", source, err)
	}
	return staged{part: Part{Path: name, Source: source, Size: int64(len(b)), SHA256: digest(b)}, data: b}, nil
}

// stageFile hashes a file that stays on disk until the archive is written.
func stageFile(name, source, path string) (staged, error) {
	f, err := os.Open(path)
	if err != nil {
		return staged{}, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return staged{}, fmt.Errorf("read %s: %w", path, err)
	}
	return staged{part: Part{Path: name, Source: source, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, file: path}, nil
}

// stageTree reads every regular file below a host directory.
func stageTree(prefix, source, hostDir string) ([]staged, error) {
	var out []staged
	err := filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(hostDir, p)
		if err != nil {
			return err //nolint:wrapcheck // wrapped below
		}
		s, err := stageMemory(prefix+filepath.ToSlash(rel), filepath.Join(source, rel), p)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	slices.SortFunc(out, func(a, b staged) int { return strings.Compare(a.part.Path, b.part.Path) })
	return out, nil
}

// writeArchive writes the tar.gz (manifest first) to a temporary file
// beside path, mode 0600, and renames it into place.
func writeArchive(path string, m Manifest, parts []staged) (err error) {
	mb, err := encodeManifest(m)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	mtime := m.CreatedAt
	add := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		n, err := io.Copy(tw, r)
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if n != size {
			return fmt.Errorf("write %s: %d bytes, expected %d", name, n, size)
		}
		return nil
	}
	if err := add(ManifestName, int64(len(mb)), strings.NewReader(string(mb))); err != nil {
		return err
	}
	for _, p := range parts {
		if p.file == "" {
			if err := add(p.part.Path, p.part.Size, strings.NewReader(string(p.data))); err != nil {
				return err
			}
			continue
		}
		src, err := os.Open(p.file)
		if err != nil {
			return fmt.Errorf("read %s: %w", p.file, err)
		}
		err = add(p.part.Path, p.part.Size, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish %s: %w", path, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("finish %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// refuseAgent refuses a host `tpctl join` made a K3s agent: the cluster's
// datastore, token and CA live on its server, and an agent has no
// k3s.service to stop or start.
func refuseAgent(s installer.State) error {
	if s.Role == installer.RoleServer {
		// A joined member's datastore is the cluster's embedded etcd, not
		// kine's SQLite file this backup copies.
		return fmt.Errorf("this host is a control-plane member joined with `tpctl join --role server`: its datastore is the cluster's embedded etcd, which tpctl backup cannot copy yet; nothing was changed")
	}
	if !installer.AgentState(s) {
		return nil
	}
	server := "its server"
	if s.Join != nil && s.Join.Server != "" {
		server = s.Join.Server
	}
	return fmt.Errorf("this host is a K3s agent joined to %s: the cluster's datastore, token and CA are on the server; run tpctl backup there; nothing was changed", server)
}
