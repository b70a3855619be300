Rails.application.routes.draw do
  # navigator forwards the full path (/rails/alpha/notes), so every route lives under the
  # tenant's prefix.
  scope Notes::SCOPE do
    root "notes#index"
    resources :notes, only: %i[index create]
    get "up", to: "notes#up"
  end
  # navigator's readiness probe asks GET /up without the prefix.
  get "up", to: "notes#up" unless Notes::BASE.empty?
end
