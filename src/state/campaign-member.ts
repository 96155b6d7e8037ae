/**
 * A failing call in a bank's campaign count: the number it presented and the call's token,
 * so a rescored callId is one call and the campaign report can say which numbers were used.
 */
export function campaignMember(number: string, token: string): string {
  return `${number} ${token}`;
}

export function campaignMemberNumber(member: string): string {
  const space = member.indexOf(' ');
  return space === -1 ? member : member.slice(0, space);
}
