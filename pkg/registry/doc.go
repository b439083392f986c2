// Package registry speaks the OCI distribution protocol on both sides: the
// client berth uses to pull from and push to registries (with login
// credentials), and an embedded registry server (Server, built on
// distribution/distribution v3 with filesystem storage) behind
// "berth registry serve".
//
// The server is configured in code from ServerOptions; distribution's
// REGISTRY_* environment overrides and YAML files are not consulted.
package registry
