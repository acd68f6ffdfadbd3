// Package testenv starts what integration and end-to-end tests of pipeline
// management need: a real API server (test/cluster) with the tpctl CRDs, the
// operator running in the test process, a namespace and a core instance.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tpctl/tpctl/api/v1alpha1"
	"github.com/tpctl/tpctl/manage"
	"github.com/tpctl/tpctl/operator"
	"github.com/tpctl/tpctl/test/cluster"
)

// InstanceName is the core instance Env creates.
const InstanceName = "core"

// Env is a real API server with the tpctl CRDs, the operator running in
// this process, a namespace of the test's own and a core instance in it.
type Env struct {
	Kubeconfig string
	REST       *rest.Config
	Namespace  string
	Client     *manage.Client
	// Raw is a plain controller-runtime client for checks of owned objects.
	Raw client.Client
}

// EnvOptions tune StartEnv.
type EnvOptions struct {
	// Instance is changed before the core instance is created (proxies,
	// pipeline defaults); nil keeps the defaults.
	Instance func(*v1alpha1.CoreInstance)
	// DefaultImage runs pipelines that name no image.
	DefaultImage string
}

// StartEnv starts a ControlPlane (test/cluster) and an operator against it,
// stopped in t.Cleanup.
func StartEnv(ctx context.Context, t testing.TB, o EnvOptions) *Env {
	t.Helper()
	cp := cluster.StartControlPlane(ctx, t)
	return StartEnvOn(ctx, t, cp.Kubeconfig(), cp.RESTConfig(), o)
}

// StartEnvOn installs the CRDs on an API server that is already running
// (a ControlPlane or a Node), starts the operator for a new namespace and
// creates the core instance in it.
func StartEnvOn(ctx context.Context, t testing.TB, kubeconfig string, cfg *rest.Config, o EnvOptions) *Env {
	t.Helper()
	// controller-runtime logs through its root logger, which complains on
	// stderr until one is set; these tests read objects, not logs.
	ctrllog.SetLogger(logr.Discard())
	if err := InstallCRDs(ctx, cfg); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	scheme, err := manage.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tpctl-"}}
	if err := raw.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	StartOperator(ctx, t, cfg, ns.Name, o.DefaultImage)
	inst := &v1alpha1.CoreInstance{ObjectMeta: metav1.ObjectMeta{Name: InstanceName, Namespace: ns.Name}}
	if o.Instance != nil {
		o.Instance(inst)
	}
	if err := raw.Create(ctx, inst); err != nil {
		t.Fatalf("create core instance: %v", err)
	}
	mc, err := manage.New(cfg, ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Kubeconfig: kubeconfig, REST: cfg, Namespace: ns.Name, Client: mc, Raw: raw}
}

// StartOperator runs the operator's manager for namespace until the test
// ends. Each call gets controllers of a unique name, so several may run in
// one test binary.
func StartOperator(ctx context.Context, t testing.TB, cfg *rest.Config, namespace, defaultImage string) {
	t.Helper()
	reserved, err := operator.DefaultReservedPorts()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := operator.NewManager(cfg, operator.Options{MetricsAddr: "0", ProbeAddr: "0", Reserved: reserved,
		Namespaces: []string{namespace}, DefaultImage: defaultImage, Workers: 4, Name: "-" + uniqueSuffix(t)})
	if err != nil {
		t.Fatalf("operator manager: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})
}

func uniqueSuffix(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.ToLower(t.Name()))
	if len(name) > 20 {
		name = name[:20]
	}
	return name + hex.EncodeToString(b)
}

// InstallCRDs creates the tpctl CRDs (unless present) and waits until
// they are served.
func InstallCRDs(ctx context.Context, cfg *rest.Config) error {
	crds, err := v1alpha1.CRDs()
	if err != nil {
		return err
	}
	cs, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("CRD client: %w", err)
	}
	for _, crd := range crds {
		_, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", crd.Name, err)
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s: %w", crd.Name, err)
		}
	}
	return nil
}
