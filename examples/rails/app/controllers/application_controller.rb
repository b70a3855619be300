class ApplicationController < ActionController::Base
  # config.load_defaults turns on CSRF protection for every non-GET request.
end
