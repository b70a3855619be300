require_relative "boot"

require "rails"
require "active_model/railtie"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"
require "action_cable/engine"

Bundler.require(*Rails.groups)

module Notes
  # The tenant's prefix (/rails/alpha) comes from RAILS_APP_SCOPE in the environment
  # navigator gives each tenant; routes.rb scopes every route under it.
  SCOPE = "/" + ENV.fetch("RAILS_APP_SCOPE", "").delete_prefix("/").delete_suffix("/")
  BASE = SCOPE.delete_suffix("/") # "" when mounted at the root
  TENANT = ENV.fetch("TENANT_NAME", "notes")

  class Application < Rails::Application
    config.load_defaults 6.1

    # Cookies scoped to this tenant: Rails' default Path=/ would send this tenant's session
    # to every tenant on the host, and each tenant's session would overwrite the others'.
    config.session_store :cookie_store, key: "_notes_session", path: "#{BASE}/"

    # Action Cable under the tenant's prefix (navigator forwards /rails/alpha/cable to this
    # tenant; a bare /cable would go to navigator's own pub/sub), and the origins allowed to
    # open it: the site's own origin(s), from the environment.
    config.action_cable.mount_path = "#{BASE}/cable"
    config.action_cable.allowed_request_origins =
      ENV.fetch("RAILS_ALLOWED_ORIGINS", "http://localhost:3000").split(",")
  end
end
