class NotesController < ApplicationController
  def index
    @notes = Note.order(:id)
    @added = session[:added].to_i
  end

  def create
    body = params.require(:note).permit(:body)[:body].to_s.strip
    unless body.empty?
      note = Note.create!(body: body[0, 500])
      session[:added] = session[:added].to_i + 1
      ActionCable.server.broadcast("notes", { tenant: Notes::TENANT, note: note.body })
    end
    # root_path is "/rails/alpha"; navigator would redirect that to "/rails/alpha/" anyway.
    redirect_to "#{root_path.delete_suffix('/')}/", status: :see_other
  end

  def up
    render plain: "ok"
  end
end
