package main

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/tpctl/tpctl/manage"
)

// podsConn is a connection as the other cluster commands make it, with a
// clientset's core API for pods (their logs and their proxy).
type podsConn struct {
	REST      *rest.Config
	Namespace string
	Pods      corev1client.CoreV1Interface
}

// connectPods resolves the kubeconfig and connects to namespace.
func connectPods(kubeconfig, namespace string) (*podsConn, error) {
	kc, err := manage.NewKubeconfigLocator().Resolve(kubeconfig)
	if err != nil {
		return nil, err
	}
	conn, err := manage.Connect(kc, namespace)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(conn.REST)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client for %s: %w", conn.REST.Host, err)
	}
	return &podsConn{REST: conn.REST, Namespace: conn.Namespace, Pods: cs.CoreV1()}, nil
}
