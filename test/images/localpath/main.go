// Command localpath is the stand-in for rancher/local-path-provisioner, the
// local-storage component K3s deploys by default: for claims of a
// StorageClass whose provisioner is rancher.io/local-path it creates a
// hostPath PersistentVolume in <path>/pvc-<uid>_<namespace>_<claim> on the
// claim's node (bound to that node), and deletes the directory and the
// volume when the claim is gone and the reclaim policy is Delete. The real
// provisioner makes the directory with a helper pod; this one has the node
// directory mounted at the same path and makes it itself.
//
//	localpath --path /var/lib/rancher/k3s/storage   (NODE_NAME: the pod's node)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

func main() {
	path := flag.String("path", "/var/lib/rancher/k3s/storage", "node directory for volumes (mounted at the same path)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *path, os.Getenv("NODE_NAME")); err != nil {
		fmt.Fprintln(os.Stderr, "localpath:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path, node string) error {
	if node == "" {
		return fmt.Errorf("NODE_NAME is not set")
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	p := &Provisioner{Client: cs, BasePath: path, Node: node}
	f := informers.NewSharedInformerFactory(cs, 30*time.Second)
	pvcs, pvs, scs := f.Core().V1().PersistentVolumeClaims(), f.Core().V1().PersistentVolumes(), f.Storage().V1().StorageClasses()
	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, n any) { poke(n) }, DeleteFunc: poke}
	for _, inf := range []cache.SharedIndexInformer{pvcs.Informer(), pvs.Informer(), scs.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	f.WaitForCacheSync(ctx.Done())
	fmt.Fprintf(os.Stderr, "localpath: serving %s on node %s under %s\n", ProvisionerName, node, path)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-tick.C:
		}
		claims, _ := pvcs.Lister().List(labels.Everything())
		for _, c := range claims {
			sc := classOf(scs.Lister().Get, c)
			if err := p.Provision(ctx, c, sc); err != nil {
				fmt.Fprintln(os.Stderr, "localpath:", err)
			}
		}
		vols, _ := pvs.Lister().List(labels.Everything())
		for _, v := range vols {
			if err := p.Delete(ctx, v); err != nil {
				fmt.Fprintln(os.Stderr, "localpath:", err)
			}
		}
	}
}
