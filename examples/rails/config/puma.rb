max_threads_count = ENV.fetch("RAILS_MAX_THREADS") { 5 }
min_threads_count = ENV.fetch("RAILS_MIN_THREADS") { max_threads_count }
threads min_threads_count, max_threads_count

port ENV.fetch("PORT") { 3000 }
environment ENV.fetch("RAILS_ENV") { "development" }

# Every tenant runs from this same directory, so each needs a pid file of its own
# (navigator sets PIDFILE=tmp/pids/<tenant name>.pid per tenant): with the shared default
# the second tenant's `rails server` finds the first one's file, says "A server is already
# running" and exits.
pidfile ENV.fetch("PIDFILE") { "tmp/pids/server.pid" }
