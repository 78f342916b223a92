// settings.after: whose membership claims to refresh (an email change
// leaves pending invitations with the address they were sent to).
function(ctx) {
  flow_id: ctx.flow.id,
  identity_id: ctx.identity.id,
}
