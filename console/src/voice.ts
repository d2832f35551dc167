/**
 * Audio for voice workitems. On AWS the room's join token goes to the Chime SDK client
 * (amazon-chime-sdk-js, loaded only when a call is joined: it is most of the bundle's weight);
 * with the local stack's fake provider there is no media, and the screen shows the room state.
 */
import type { ConsoleConfig } from "./api";
import type { Room } from "./protocol";

export interface AudioSession {
  readonly media: "chime" | "none";
  leave(): Promise<void>;
}

export async function joinAudio(config: ConsoleConfig, room: Room, element: HTMLAudioElement | null): Promise<AudioSession> {
  if (config.voice !== "chime") {
    return { media: "none", leave: async () => undefined };
  }
  const chime = await import("amazon-chime-sdk-js");
  const logger = new chime.ConsoleLogger("voice", chime.LogLevel.WARN);
  const configuration = new chime.MeetingSessionConfiguration(
    { Meeting: { MeetingId: room.meetingId, MediaRegion: room.mediaRegion, MediaPlacement: room.mediaPlacement } },
    { Attendee: { AttendeeId: room.attendeeId, JoinToken: room.joinToken } },
  );
  const devices = new chime.DefaultDeviceController(logger);
  const session = new chime.DefaultMeetingSession(configuration, logger, devices);
  const audio = session.audioVideo;
  const send = room.capabilities?.audio === "SendReceive" || room.capabilities?.audio === "Send";
  if (send) {
    const inputs = await audio.listAudioInputDevices();
    if (inputs[0]) await audio.startAudioInput(inputs[0].deviceId);
  } else {
    audio.realtimeMuteLocalAudio();
  }
  if (element) await audio.bindAudioElement(element);
  audio.start();
  return {
    media: "chime",
    leave: async () => {
      audio.stop();
      await audio.stopAudioInput();
    },
  };
}
