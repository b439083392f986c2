// Package reference parses and normalises image names the way Docker does:
// "python" means "docker.io/library/python:latest", "ghcr.io/org/app"
// means "ghcr.io/org/app:latest", and a digest may follow a tag.
//
// A Reference is a value; its String form is the fully qualified name berth
// stores, and Familiar gives the short form users type and docker prints.
package reference
