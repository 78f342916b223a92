// login.after and settings.after: whose membership claims to refresh.
function(ctx) {
  flow_id: ctx.flow.id,
  identity_id: ctx.identity.id,
}
