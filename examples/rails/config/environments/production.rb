Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
  config.consider_all_requests_local = false
  config.action_controller.perform_caching = true

  # navigator serves public/ (server.static in navigator.yml); requests for it never get here.
  config.public_file_server.enabled = false

  config.log_level = :info
  config.log_tags = [:request_id]
  config.active_support.deprecation = :notify
  config.active_support.disallowed_deprecation = :log
  config.active_support.disallowed_deprecation_warnings = []
  config.log_formatter = ::Logger::Formatter.new
  # navigator prefixes each line of a tenant's output with the tenant's name.
  logger = ActiveSupport::Logger.new($stdout)
  logger.formatter = config.log_formatter
  config.logger = ActiveSupport::TaggedLogging.new(logger)

  config.active_record.dump_schema_after_migration = false
end
