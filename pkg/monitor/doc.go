// Package monitor watches running containers: resource readings from
// their cgroups and network namespaces (stats), Prometheus metrics with
// cAdvisor's names, the dashboard, and HTTP load tests of services.
package monitor
