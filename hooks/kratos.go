// Package hooks serves the webhooks Kratos calls during its self-service
// flows (on the admin listener): invite-only or domain-limited sign-up,
// acceptance of invitations through Kratos' own sign-up and verification,
// organizations created at sign-up, and refreshing the membership claims
// applications read from the session.
package hooks

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Stable message ids in Kratos' 4xx interrupt format.
const (
	MsgNotInvited             = 4000100
	MsgInviteOnly             = 4000101
	MsgDomainNotAllowed       = 4000102
	MsgInvitationWrongAddress = 4000103
	MsgInvitationInvalid      = 4000104
	MsgBadRequest             = 4000105
	MsgUnavailable            = 4000106
)

// messages is the body Kratos reads from a 4xx of a parse hook: it shows
// each message on the form node its instance_ptr names.
type messages struct {
	Messages []instanceMessages `json:"messages"`
}

type instanceMessages struct {
	InstancePtr string    `json:"instance_ptr"`
	Messages    []message `json:"messages"`
}

type message struct {
	ID      int            `json:"id"`
	Text    string         `json:"text"`
	Type    string         `json:"type"`
	Context map[string]any `json:"context"`
}

// refuse interrupts a flow with one message. Always 4xx: Kratos retries a
// 5xx and then drops the message.
func refuse(c *gin.Context, status int, pointer string, id int, reason, text string) {
	refuseAll(c, status, instanceMessages{InstancePtr: pointer, Messages: []message{msg(id, reason, text)}})
}

func msg(id int, reason, text string) message {
	return message{ID: id, Text: text, Type: "error", Context: map[string]any{"reason": reason}}
}

// refuseAll interrupts with messages on several nodes ("#/" is the flow).
func refuseAll(c *gin.Context, status int, m ...instanceMessages) {
	body, _ := json.Marshal(messages{Messages: m})
	c.Data(status, "application/json", body)
	c.Abort()
}

// identityChange is a parse hook's 200 body: Kratos replaces each field
// that is present.
type identityChange struct {
	Identity struct {
		VerifiableAddresses []Address      `json:"verifiable_addresses,omitempty"`
		MetadataAdmin       map[string]any `json:"metadata_admin,omitempty"`
	} `json:"identity"`
}

// noChange lets a flow continue unchanged.
func noChange(c *gin.Context) { c.Status(http.StatusNoContent) }
