# Streams new notes of this tenant to its pages; greets a subscriber with the note count.
class NotesChannel < ApplicationCable::Channel
  def subscribed
    stream_from "notes"
    transmit({ tenant: Notes::TENANT, notes: Note.count })
  end
end
