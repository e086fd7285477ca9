//go:build !wasip1

package main

import "github.com/portico-dev/portico/pdk/rpc"

func main() { rpc.Serve(PagerDuty{}) }
